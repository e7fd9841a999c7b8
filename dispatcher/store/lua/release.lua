-- KEYS: record, lease. ARGV: lease token, 1 to end the run only if that token holds the lease now (the lease of a
-- claim whose answer was lost: the claim may never have run, and a lease that ran out is a dead run's to count).
if ARGV[2] == '1' and redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
end_run(KEYS[1], KEYS[2], ARGV[1])
return 1
