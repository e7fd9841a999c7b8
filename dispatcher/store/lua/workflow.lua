-- One workflow decision on the OTP's current send, in one step. KEYS: record, due, deadlines, lease, attempts.
-- ARGV: otp_id, reason (DELIVERED: a delivered receipt; DEADLINE: its deadline job; UNDELIVERED: an undelivered
-- receipt; FAILED: no vendor of the step took it), the send number (empty: the send of the attempt at ARGV[4]),
-- attempt index, now, the workflow's last step, due grace (seconds), lease token (FAILED: the worker's run).
-- Answers {kind, ...}: STALE (a newer send or step exists: nothing done), OVER (the OTP is verified, failed or
-- expired), GONE, STOPPED (a delivered receipt ended the workflow), WAIT ({deadline, expires_at}: not yet), LAST
-- (no step follows), ADVANCED (the next step is a new send: {job number, expires_at, step}).
local otp_id, reason, now = ARGV[1], ARGV[2], tonumber(ARGV[5])
local f = redis.call('HMGET', KEYS[1], F.status, F.expires_at, F.send_seq, F.step, F.step_deadline,
                     F.step_delivered, F.step_log)
if not f[1] then
  redis.call('ZREM', KEYS[3], otp_id)
  return {'GONE'}
end
local send = ARGV[3]
if send == '' then
  local logged = redis.call('LINDEX', KEYS[5], tonumber(ARGV[4]))
  if not logged then return {'STALE'} end
  send = tostring(cjson.decode(logged).send_number)
end
if tonumber(send) ~= tonumber(f[3]) then return {'STALE'} end
if f[1] ~= 'OPEN' or now >= tonumber(f[2]) then
  redis.call('ZREM', KEYS[3], otp_id)
  return {'OVER'}
end
if reason == 'DELIVERED' then
  redis.call('HSET', KEYS[1], F.step_deadline, 0, F.step_delivered, send)
  redis.call('ZREM', KEYS[3], otp_id)
  return {'STOPPED'}
end
if tonumber(f[6] or '0') == tonumber(send) then return {'STOPPED'} end
if reason == 'DEADLINE' then
  local deadline = tonumber(f[5] or '0')
  if deadline == 0 then return {'STOPPED'} end
  if now < deadline then return {'WAIT', f[5], f[2]} end
end
local step = tonumber(f[4] or '0')
if step >= tonumber(ARGV[6]) then
  redis.call('HSET', KEYS[1], F.step_deadline, 0)
  redis.call('ZREM', KEYS[3], otp_id)
  return {'LAST'}
end
local log = f[7] or ''
if log ~= '' then log = log .. ',' end
redis.call('HINCRBY', KEYS[1], F.send_seq, 1)
local job = redis.call('HINCRBY', KEYS[1], F.job_seq, 1)
redis.call('HSET', KEYS[1], F.step, step + 1, F.step_deadline, 0, F.chain_pos, 0, F.vendor_tries, 0,
           F.route_first, '', F.failure, '', F.queued_at, ARGV[5], F.step_log, log .. send .. '/' .. step .. '/' .. reason)
redis.call('ZREM', KEYS[3], otp_id)
due_at(KEYS[2], otp_id, now + tonumber(ARGV[7]))
end_run(KEYS[1], KEYS[4], ARGV[8])
return {'ADVANCED', tostring(job), f[2], tostring(step + 1)}
