-- KEYS: postbacks due. ARGV: now, due again after (seconds), most at once, record key prefix.
-- Takes the postbacks whose due time has passed ('<otp_id>:<event>'): each of an OTP that is gone is
-- dropped; the others are due again later (the postback task clears them once received) and returned.
local taken = {}
local overdue = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, owed in ipairs(overdue) do
  local otp_id = string.match(owed, '^(.*):')
  if redis.call('EXISTS', ARGV[4] .. otp_id) == 0 then
    redis.call('ZREM', KEYS[1], owed)
  else
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), owed)
    table.insert(taken, owed)
  end
end
return taken
