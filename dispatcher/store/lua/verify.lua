-- KEYS: record. ARGV: now, the code's digest.
local f = redis.call('HMGET', KEYS[1], F.status, F.expires_at, F.verify_attempts, F.max_attempts,
                     F.vendor, F.reference, F.code_hashes)
if not f[1] then return {'FAILED'} end
if f[1] == 'VERIFIED' then return {'ALREADY_VERIFIED'} end
if tonumber(ARGV[1]) >= tonumber(f[2]) then return {'EXPIRED'} end
if tonumber(f[3]) >= tonumber(f[4]) then return {'FAILED'} end
local given, matched = ARGV[2], false
for stored in string.gmatch(f[7], '[^,]+') do
  local diff = (#stored == #given) and 0 or 1
  for i = 1, math.min(#stored, #given) do
    diff = bit.bor(diff, bit.bxor(stored:byte(i), given:byte(i)))
  end
  matched = matched or diff == 0
end
if matched and f[1] == 'OPEN' then
  redis.call('HSET', KEYS[1], F.status, 'VERIFIED', F.verified_at, ARGV[1])
  return {'APPROVED'}
end
local used = redis.call('HINCRBY', KEYS[1], F.verify_attempts, 1)
if matched or f[6] == '' then
  if used >= tonumber(f[4]) and f[1] == 'OPEN' then lock(KEYS[1]) end
  return {'FAILED'}
end
return {'VENDOR', f[5], f[6]}
