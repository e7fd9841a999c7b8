-- A run's last write also gives up its lease, saving a round trip (an empty token: the run goes on). A
-- lease that ran out while its run was cut off from Redis still ends here: the run is over, not dead; only
-- a lease now held by another run is left alone.
-- ``exists``: whether the record exists, when the caller knows (else it is asked).
local function end_run(record, lease, token, exists)
  if token == '' then return end
  local holder = redis.call('GET', lease)
  if holder and holder ~= token then return end
  redis.call('DEL', lease)
  if exists == nil then exists = redis.call('EXISTS', record) == 1 end
  if exists then redis.call('HSET', record, F.running, 0) end
end
