-- KEYS: record, lease, due. ARGV: send number, chain position, vendor tries, the time the retry's job is due
-- (0: no retry job, the run goes on), lease token, otp_id, due grace (seconds).
local job = 0
if redis.call('HGET', KEYS[1], F.send_seq) == ARGV[1] then
  redis.call('HSET', KEYS[1], F.chain_pos, ARGV[2], F.vendor_tries, ARGV[3])
  if ARGV[4] ~= '0' then
    job = redis.call('HINCRBY', KEYS[1], F.job_seq, 1)
    redis.call('HSET', KEYS[1], F.queued_at, ARGV[4])
    due_at(KEYS[3], ARGV[6], tonumber(ARGV[4]) + tonumber(ARGV[7]))
  else
    job = tonumber(redis.call('HGET', KEYS[1], F.job_seq))
  end
end
end_run(KEYS[1], KEYS[2], ARGV[5])
return job
