-- The attempt budget is used up: the OTP is final (FAILED), its later verifies and resends are refused.
local function lock(record)
  redis.call('HSET', record, F.status, 'FAILED', F.failure, 'too many wrong codes')
end
