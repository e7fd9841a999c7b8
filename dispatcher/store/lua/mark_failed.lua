-- KEYS: record, lease. ARGV: send number, reason, lease token.
local f = redis.call('HMGET', KEYS[1], F.status, F.send_seq, F.delivered_seq)
if f[1] == 'OPEN' and f[2] == ARGV[1] then
  redis.call('HSET', KEYS[1], F.failure, ARGV[2])
  if tonumber(f[3]) == 0 then redis.call('HSET', KEYS[1], F.status, 'FAILED') end
end
end_run(KEYS[1], KEYS[2], ARGV[3])
return 1
