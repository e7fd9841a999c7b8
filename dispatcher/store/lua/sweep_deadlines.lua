-- KEYS: deadlines. ARGV: now, due grace (seconds), most OTPs at once, record key prefix.
-- Takes the OTPs whose step deadline (plus a grace) has passed: each whose workflow is over (verified, failed,
-- expired, gone, or its step stopped by a delivered receipt) is dropped from the index; each other is due again
-- a grace later and returned as {otp_id, step, send number, expires_at}, for a deadline job to be queued again.
local now, grace = tonumber(ARGV[1]), tonumber(ARGV[2])
local taken = {}
local overdue = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, otp_id in ipairs(overdue) do
  local f = redis.call('HMGET', ARGV[4] .. otp_id, F.status, F.expires_at, F.step, F.send_seq, F.step_deadline)
  if not f[1] or f[1] ~= 'OPEN' or now >= tonumber(f[2]) or tonumber(f[5] or '0') == 0 then
    redis.call('ZREM', KEYS[1], otp_id)
  else
    redis.call('ZADD', KEYS[1], now + grace, otp_id)
    table.insert(taken, {otp_id, f[3], f[4], f[2]})
  end
end
return taken
