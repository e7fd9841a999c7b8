-- KEYS: record, lease. ARGV: send number, chain position, vendor tries, 1 for a next job, lease token.
local job = 0
if redis.call('HGET', KEYS[1], F.send_seq) == ARGV[1] then
  redis.call('HSET', KEYS[1], F.chain_pos, ARGV[2], F.vendor_tries, ARGV[3])
  if ARGV[4] == '1' then job = redis.call('HINCRBY', KEYS[1], F.job_seq, 1)
  else job = tonumber(redis.call('HGET', KEYS[1], F.job_seq)) end
end
end_run(KEYS[1], KEYS[2], ARGV[5])
return job
