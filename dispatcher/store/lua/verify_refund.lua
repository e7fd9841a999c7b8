-- KEYS: record.
if redis.call('HGET', KEYS[1], F.status) == 'OPEN' then
  redis.call('HINCRBY', KEYS[1], F.verify_attempts, -1)
end
return 1
