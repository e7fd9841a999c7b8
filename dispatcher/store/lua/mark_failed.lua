-- KEYS: record, lease, due, postbacks due. ARGV: send number, reason, lease token, otp_id, the time an owed postback is due
-- by (if its job was lost).
local f = redis.call('HMGET', KEYS[1], F.status, F.send_seq, F.delivered_seq)
if f[1] == 'OPEN' and f[2] == ARGV[1] then
  redis.call('HSET', KEYS[1], F.failure, ARGV[2])
  if tonumber(f[3]) == 0 then redis.call('HSET', KEYS[1], F.status, 'FAILED') end
  not_due(KEYS[3], ARGV[4])
  owe_postback(KEYS[1], KEYS[4], ARGV[4], 'FAILED', ARGV[5])
end
end_run(KEYS[1], KEYS[2], ARGV[3])
return 1
