-- KEYS: record, lease, due, postbacks due. ARGV: now, job number, lease token, lease milliseconds, crashes
-- allowed, poison reason, otp_id, due grace (seconds), the time an owed postback is due by.
if redis.call('GET', KEYS[2]) == ARGV[3] then
  -- the same claim again (the client sent it once more, the first answer lost): what the first one answered
  local made = redis.call('HMGET', KEYS[1], F.claimed_as, F.expires_at)
  return {made[1], made[2], redis.call('HGETALL', KEYS[1])}
end
local f = redis.call('HMGET', KEYS[1], F.status, F.expires_at, F.send_seq, F.delivered_seq, F.job_seq, F.running)
if f[1] ~= 'OPEN' or tonumber(f[4]) >= tonumber(f[3]) or tonumber(ARGV[1]) >= tonumber(f[2]) then
  not_due(KEYS[3], ARGV[7])
  return {'SKIP'}
end
if tonumber(ARGV[2]) < tonumber(f[5]) then return {'SKIP'} end
if not redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return {'BUSY', f[2]} end
local kind = 'RUN'
if f[6] == '1' then
  kind = 'CRASHED'
  if redis.call('HINCRBY', KEYS[1], F.crashes, 1) >= tonumber(ARGV[5]) then
    kind = 'POISON'
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[1], F.running, 0, F.failure, ARGV[6])
    if tonumber(f[4]) == 0 then redis.call('HSET', KEYS[1], F.status, 'FAILED') end
    not_due(KEYS[3], ARGV[7])
    owe_postback(KEYS[1], KEYS[4], ARGV[7], 'FAILED', ARGV[9])
  end
end
if kind ~= 'POISON' then
  redis.call('HSET', KEYS[1], F.running, 1, F.job_seq, ARGV[2], F.claimed_as, kind)
  -- a run that dies holding the lease leaves the OTP due once the lease has run out
  due_at(KEYS[3], ARGV[7], tonumber(ARGV[1]) + tonumber(ARGV[4]) / 1000 + tonumber(ARGV[8]))
end
return {kind, f[2], redis.call('HGETALL', KEYS[1])}
