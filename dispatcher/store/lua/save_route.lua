-- KEYS: record. ARGV: send number, the route it decided (JSON).
if redis.call('HGET', KEYS[1], F.send_seq) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], F.routing, ARGV[2])
return 1
