-- KEYS: record, due, deadlines. ARGV: now, 1 to only check the resend rules (nothing written), otp_id, the time the
-- resend's job must have been taken by.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'UNKNOWN'} end
local f = redis.call('HMGET', KEYS[1], F.status, F.expires_at, F.resend_count, F.resend_limit,
                     F.resend_delay, F.last_send_at, F.delivered_by, F.verify_attempts, F.max_attempts)
local now = tonumber(ARGV[1])
if now >= tonumber(f[2]) then return {'EXPIRED'} end
if f[1] == 'VERIFIED' then return {'VERIFIED'} end
if tonumber(f[8]) >= tonumber(f[9]) then return {'LOCKED'} end
if tonumber(f[3]) >= tonumber(f[4]) then return {'LIMIT'} end
local wait = tonumber(f[6]) + tonumber(f[5]) - now
if wait > 0 then return {'TOO_SOON', tostring(wait)} end
if ARGV[2] == '1' then return {'ALLOWED'} end
-- The workflow starts again: from the current step if a delivered receipt confirmed its send (that way
-- works), else from the first step; any running deadline is over.
local w = redis.call('HMGET', KEYS[1], F.step, F.step_delivered, F.send_seq, F.step_log, F.workflow)
if w[5] and w[5] ~= '' then
  local step = 0
  if w[2] == w[3] then step = tonumber(w[1]) end
  local log = w[4] or ''
  if log ~= '' then log = log .. ',' end
  redis.call('HSET', KEYS[1], F.step, step, F.step_deadline, 0, F.step_log, log .. w[3] .. '/' .. w[1] .. '/RESEND')
  redis.call('ZREM', KEYS[3], ARGV[3])
end
local count = redis.call('HINCRBY', KEYS[1], F.resend_count, 1)
redis.call('HINCRBY', KEYS[1], F.send_seq, 1)
local job = redis.call('HINCRBY', KEYS[1], F.job_seq, 1)
redis.call('HSET', KEYS[1], F.status, 'OPEN', F.last_send_at, ARGV[1], F.route_first, f[7],
           F.chain_pos, 0, F.vendor_tries, 0, F.failure, '', F.queued_at, ARGV[1])
due_at(KEYS[2], ARGV[3], ARGV[4])
return {'OK', tostring(count), f[2], tostring(job)}
