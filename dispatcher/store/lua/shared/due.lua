-- The due index (KEYS of the caller): every OTP whose current send is not final, scored by the time a run
-- must have taken it by; past that, with no run holding its lease, the sweeper queues its job again.
local function due_at(due, otp_id, at)
  redis.call('ZADD', due, at, otp_id)
end

-- The current send is final (delivered, failed) or the OTP is (verified, expired, failed): nothing is due.
local function not_due(due, otp_id)
  redis.call('ZREM', due, otp_id)
end

-- A final outcome a postback is owed for (``event``: DELIVERED or FAILED), if the OTP asked for one: the
-- postback is due at once; the postback task clears it once received, or makes it due later. ``wanted``: the
-- record's postbacks field, when the caller has read it (else it is read here).
local function owe_postback(record, postbacks, otp_id, event, at, wanted)
  wanted = wanted or redis.call('HGET', record, F.postbacks) or ''
  if string.find(wanted, event, 1, true) then redis.call('ZADD', postbacks, at, otp_id .. ':' .. event) end
end
