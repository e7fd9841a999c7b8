-- KEYS: record, the vendor check of the code (check_key), attempts. ARGV: 1 if a vendor approved the code, now,
-- the check's token, the references the vendors checked it against (JSON list), the code's digest, the vendor
-- that approved it.
-- Answers {status}, or {'APPROVED', the credited attempt ('' if none), country, channel}.
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
local status = redis.call('HGET', KEYS[1], F.status)
if not status then return {'FAILED'} end
if status == 'VERIFIED' then return {'ALREADY_VERIFIED'} end
if ARGV[1] ~= '1' then
  local wrong = redis.call('HGET', KEYS[1], F.wrong_codes) or ''
  for _, reference in ipairs(cjson.decode(ARGV[4])) do
    local judged = redis.sha1hex(reference .. '\0' .. ARGV[5])
    wrong = wrong == '' and judged or wrong .. ',' .. judged
  end
  redis.call('HSET', KEYS[1], F.wrong_codes, wrong)
  local f = redis.call('HMGET', KEYS[1], F.verify_attempts, F.max_attempts)
  if status == 'OPEN' and tonumber(f[1]) >= tonumber(f[2]) then lock(KEYS[1]) end
  return {'FAILED'}
end
if status ~= 'OPEN' then return {'FAILED'} end
redis.call('HSET', KEYS[1], F.status, 'VERIFIED', F.verified_at, ARGV[2])
redis.call('HINCRBY', KEYS[1], F.verify_attempts, -1)
local f = redis.call('HMGET', KEYS[1], F.country, F.channel)
local credited = credit(KEYS[1], KEYS[3], nil, ARGV[6])
count_conversion(KEYS[1], credited, ARGV[2])
return {'APPROVED', credited, f[1] or '', f[2] or ''}
