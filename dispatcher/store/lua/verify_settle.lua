-- KEYS: record. ARGV: 1 if the vendor approved the code, now.
local status = redis.call('HGET', KEYS[1], F.status)
if status == 'VERIFIED' then return 'ALREADY_VERIFIED' end
if ARGV[1] ~= '1' or status ~= 'OPEN' then
  local f = redis.call('HMGET', KEYS[1], F.verify_attempts, F.max_attempts)
  if status == 'OPEN' and tonumber(f[1]) >= tonumber(f[2]) then lock(KEYS[1]) end
  return 'FAILED'
end
redis.call('HSET', KEYS[1], F.status, 'VERIFIED', F.verified_at, ARGV[2])
redis.call('HINCRBY', KEYS[1], F.verify_attempts, -1)
return 'APPROVED'
