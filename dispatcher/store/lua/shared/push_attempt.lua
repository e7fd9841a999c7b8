-- Append one attempt to an OTP's log; the log expires with the record.
local function push_attempt(record, log, attempt)
  redis.call('RPUSH', log, attempt)
  local ttl = redis.call('TTL', record)
  if ttl > 0 then redis.call('EXPIRE', log, ttl) end
end
