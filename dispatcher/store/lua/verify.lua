-- KEYS: record, the vendor check of this code (check_key), attempts. ARGV: now, the code's digest, a token naming
-- this call should it lead the vendor check, the time to live of one vendor's check (ms).
-- Answers {status}, {'APPROVED', the credited attempt ('' if none), country, channel}, {'WAIT'} (another call is
-- asking the vendors about this code: ask again shortly) or {'VENDOR', [[vendor, reference], ...]} (an attempt is
-- reserved: ask each vendor that sent a code it checks and has not judged this one wrong, newest first, until one
-- approves; then settle or refund).
local f = redis.call('HMGET', KEYS[1], F.status, F.expires_at, F.verify_attempts, F.max_attempts,
                     F.vendor, F.reference, F.code_hashes, F.wrong_codes, F.country, F.channel, F.vendor_codes)
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
-- the vendors that sent codes they check, newest first (a record from before the list: its one vendor)
local listed = {}
if f[11] then listed = cjson.decode(f[11]) elseif f[6] and f[6] ~= '' then listed = {{f[5], f[6]}} end
if matched or #listed == 0 then
  if not exhausted then
    local used = redis.call('HINCRBY', KEYS[1], F.verify_attempts, 1)
    if used >= tonumber(f[4]) and f[1] == 'OPEN' then lock(KEYS[1]) end
  end
  return {'FAILED'}
end
-- The vendors' codes: one check per code at a time, each distinct code judged wrong costs one attempt, once.
if redis.call('EXISTS', KEYS[2]) == 1 then return {'WAIT'} end
local wrong = {}
for judged in string.gmatch(f[8] or '', '[^,]+') do wrong[judged] = true end
local ask = {}
for _, pair in ipairs(listed) do
  if not wrong[redis.sha1hex(pair[2] .. '\0' .. given)] then ask[#ask + 1] = pair end
end
if #ask == 0 or exhausted then return {'FAILED'} end
redis.call('HINCRBY', KEYS[1], F.verify_attempts, 1)
redis.call('SET', KEYS[2], ARGV[3], 'PX', tonumber(ARGV[4]) * #ask)
return {'VENDOR', cjson.encode(ask)}
