-- KEYS: expiring. ARGV: the time up to which expiries are taken, most OTPs at once, record key prefix.
-- Takes the OTPs whose code expired by then, each once (it leaves the index in the same step, so no other sweep
-- takes it again): one not verified debits every attempt its vendor accepted (its route counts one 'expired' in
-- the minute the code expired); one gone (past its grace) or verified debits nothing.
-- Answers {vendor, channel, country} for each attempt debited.
local debited = {}
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, otp_id in ipairs(expired) do
  redis.call('ZREM', KEYS[1], otp_id)
  local record = ARGV[3] .. otp_id
  local f = redis.call('HMGET', record, F.status, F.expires_at)
  if f[1] and f[1] ~= 'VERIFIED' then
    for _, logged in ipairs(redis.call('LRANGE', record .. ':attempts', 0, -1)) do
      local attempt = cjson.decode(logged)
      if attempt.outcome == 'DELIVERED' then table.insert(debited, {count_outcome(record, attempt, 'expired', f[2])}) end
    end
  end
end
return debited
