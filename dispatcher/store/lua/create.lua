-- KEYS: record, due, expiring. ARGV: ttl, otp_id, the time its first job must have been taken by, when its code
-- expires, then field, value pairs.
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
return 1
