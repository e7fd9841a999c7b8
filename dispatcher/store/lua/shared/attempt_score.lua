-- Routing evidence (dispatcher/store/scores.py): one more attempt accepted ('s'), converted ('c') or undelivered
-- ('u') for its vendor, the OTP's country (as metrics label it) and the attempt's channel, counted in the bucket of
-- the OTP's creation time. Nothing counts while the number's range is blocked by the pumping guard. ``known``: the
-- record's country, channel, prefix and created_at fields, in that order, when the caller has read them.
local function score_attempt(record, attempt, kind, known)
  local f = known or redis.call('HMGET', record, F.country, F.channel, F.prefix, F.created_at)
  if not f[4] or redis.call('EXISTS', S.block .. (f[3] or '')) == 1 then return end
  local channel = attempt.channel
  if type(channel) ~= 'string' then channel = f[2] or 'SMS' end
  local key = S.prefix .. (f[1] or 'other') .. ':' .. channel .. ':' .. attempt.vendor
  local bucket = math.floor(tonumber(f[4]) / S.bucket) * S.bucket
  redis.call('HINCRBY', key, string.format('%d:%s', bucket, kind), 1)
  redis.call('EXPIRE', key, S.keep)
  redis.call('SADD', S.index, key)
end
