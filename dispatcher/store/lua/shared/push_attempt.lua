-- Append one attempt to an OTP's log; the log expires with the record. Returns the log's length and the record's
-- TTL (seconds; -2 when it is gone).
local function push_attempt(record, log, attempt)
  local length = redis.call('RPUSH', log, attempt)
  local ttl = redis.call('TTL', record)
  if ttl > 0 then redis.call('EXPIRE', log, ttl) end
  return length, ttl
end
