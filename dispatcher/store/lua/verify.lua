-- KEYS: record, the vendor check of this code (check_key), attempts. ARGV: now, the code's digest, a token naming
-- this call should it lead the vendor check, that check's time to live (ms).
-- Answers {status}, {'APPROVED', the credited attempt ('' if none), country, channel}, {'WAIT'} (another call is
-- asking the vendor about this code: ask again shortly) or {'VENDOR', vendor, reference} (an attempt is reserved:
-- ask the vendor, then settle or refund).
local f = redis.call('HMGET', KEYS[1], F.status, F.expires_at, F.verify_attempts, F.max_attempts,
                     F.vendor, F.reference, F.code_hashes, F.wrong_codes, F.country, F.channel)
if not f[1] then return {'FAILED'} end
if f[1] == 'VERIFIED' then return {'ALREADY_VERIFIED'} end
if tonumber(ARGV[1]) >= tonumber(f[2]) then return {'EXPIRED'} end
local exhausted = tonumber(f[3]) >= tonumber(f[4])
local given, matched, send, vendor = ARGV[2], false, nil, nil
if not exhausted then
  -- every stored hash is compared whole (no early exit): the time taken says nothing of how much matched
  for entry in string.gmatch(f[7], '[^,]+') do
    local stored, tag_send, tag_vendor = string.match(entry, '^([^@]*)@?([^@]*)@?(.*)$')
    local diff = (#stored == #given) and 0 or 1
    for i = 1, math.min(#stored, #given) do
      diff = bit.bor(diff, bit.bxor(stored:byte(i), given:byte(i)))
    end
    if diff == 0 and not matched then
      matched, send, vendor = true, tonumber(tag_send), tag_vendor
    end
  end
end
if matched and f[1] == 'OPEN' then
  redis.call('HSET', KEYS[1], F.status, 'VERIFIED', F.verified_at, ARGV[1])
  local credited = ''
  if send and vendor ~= '' then credited = credit(KEYS[1], KEYS[3], send, vendor) end
  count_conversion(KEYS[1], credited, ARGV[1])
  return {'APPROVED', credited, f[9] or '', f[10] or ''}
end
if matched or f[6] == '' then
  if not exhausted then
    local used = redis.call('HINCRBY', KEYS[1], F.verify_attempts, 1)
    if used >= tonumber(f[4]) and f[1] == 'OPEN' then lock(KEYS[1]) end
  end
  return {'FAILED'}
end
-- The vendor's code: one check per code at a time, each distinct code judged wrong costs one attempt, once.
if redis.call('EXISTS', KEYS[2]) == 1 then return {'WAIT'} end
local judged = redis.sha1hex(f[6] .. '\0' .. given)
for wrong in string.gmatch(f[8] or '', '[^,]+') do
  if wrong == judged then return {'FAILED'} end
end
if exhausted then return {'FAILED'} end
redis.call('HINCRBY', KEYS[1], F.verify_attempts, 1)
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return {'VENDOR', f[5], f[6]}
