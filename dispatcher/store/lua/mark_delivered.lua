-- KEYS: record, attempts, lease, due, postbacks due. ARGV: send number, vendor, vendor reference, the
-- attempt (JSON), lease token, otp_id, the time an owed postback is due by (if its job was lost).
push_attempt(KEYS[1], KEYS[2], ARGV[4])
local done = 0
local f = redis.call('HMGET', KEYS[1], F.status, F.delivered_seq, F.send_seq)
if f[1] == 'OPEN' and tonumber(f[2]) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], F.delivered_seq, ARGV[1], F.delivered_by, ARGV[2], F.failure, '')
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], F.vendor, ARGV[2], F.reference, ARGV[3]) end
  done = 1
  if tonumber(ARGV[1]) >= tonumber(f[3]) then not_due(KEYS[4], ARGV[6]) end
  owe_postback(KEYS[1], KEYS[5], ARGV[6], 'DELIVERED', ARGV[7])
end
end_run(KEYS[1], KEYS[3], ARGV[5])
return done
