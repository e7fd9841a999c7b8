-- KEYS: record, due, expiring, then the send limits' keys (lua/shared/limits.lua; none: no limits). ARGV: ttl,
-- otp_id, the time its first job must have been taken by, when its code expires, how many arguments of the
-- limits follow, those arguments, then field, value pairs.
-- The send is checked against its limits and counted in the same step that records it: a refused send writes
-- nothing and answers the limit's {code, seconds until it lifts}; else {'OK', 0}.
local limits = tonumber(ARGV[5])
if limits > 0 then
  local verdict = check_and_count({unpack(KEYS, 4)}, {unpack(ARGV, 6, 5 + limits)})
  if verdict[1] ~= 'OK' then return verdict end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 6 + limits))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
return {'OK', 0}
