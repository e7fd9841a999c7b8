-- KEYS: record, due. ARGV: ttl, otp_id, the time its first job must have been taken by, then field, value pairs.
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
