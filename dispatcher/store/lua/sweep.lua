-- KEYS: due. ARGV: now, due grace (seconds), most OTPs at once, record key prefix, the age past which a job
-- is republished even while the send queue is not empty (the visibility timeout), '1' while jobs wait in the
-- send queue (read from the broker, which need not be this Redis).
-- Takes the OTPs whose due time has passed: each whose send is over is dropped from the index; each a run
-- holds the lease of is due again when the lease runs out; each whose job was lost gets a new job number
-- (older copies of its job do nothing) and is returned as {otp_id, job number, expires_at} to queue again.
-- While jobs wait in the queue, an OTP whose job was queued less than the visibility timeout ago may still
-- be among them: it is due again later rather than queued twice.
local now, grace = tonumber(ARGV[1]), tonumber(ARGV[2])
local backlog = ARGV[6] == '1'
local taken = {}
local overdue = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, otp_id in ipairs(overdue) do
  local record = ARGV[4] .. otp_id
  local f = redis.call('HMGET', record, F.status, F.expires_at, F.send_seq, F.delivered_seq, F.queued_at)
  if not f[1] or f[1] ~= 'OPEN' or tonumber(f[4]) >= tonumber(f[3]) or now >= tonumber(f[2]) then
    not_due(KEYS[1], otp_id)
  else
    local lease = redis.call('PTTL', record .. ':lease')
    if lease > 0 then
      due_at(KEYS[1], otp_id, now + lease / 1000 + grace)
    elseif backlog and now - tonumber(f[5] or '0') < tonumber(ARGV[5]) then
      due_at(KEYS[1], otp_id, now + grace)
    else
      local job = redis.call('HINCRBY', record, F.job_seq, 1)
      redis.call('HSET', record, F.queued_at, ARGV[1])
      due_at(KEYS[1], otp_id, now + grace)
      table.insert(taken, {otp_id, job, f[2]})
    end
  end
end
return taken
