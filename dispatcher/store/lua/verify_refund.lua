-- KEYS: record, the vendor check of the code (check_key). ARGV: the check's token.
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
if redis.call('HGET', KEYS[1], F.status) == 'OPEN' then
  redis.call('HINCRBY', KEYS[1], F.verify_attempts, -1)
end
return 1
