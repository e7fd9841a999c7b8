-- Send limits (dispatcher/guards.py builds them): every counter is checked before any is counted, so a refused
-- send uses no quota. ``keys``: n counters, then the number range's block key. ``args``: n, then for each counter
-- its limit, window (seconds) and refusal code, then the block's cool-down (seconds) and the share of maxmemory
-- above which sends are refused. Returns {'OK', 0} or {refusal code, seconds until it lifts}.
local function check_and_count(keys, args)
  local n = tonumber(args[1])
  local memory = redis.call('INFO', 'memory')
  local limit = tonumber(string.match(memory, 'maxmemory:(%d+)'))
  local used = tonumber(string.match(memory, 'used_memory:(%d+)'))
  used = used - tonumber(string.match(memory, 'mem_not_counted_for_evict:(%d+)') or '0')
  if limit > 0 and used > limit * tonumber(args[3 * n + 3]) then return {'REDIS_FULL', 0} end
  local block = keys[n + 1]
  local blocked = redis.call('TTL', block)
  if blocked > 0 then return {'PREFIX_BLOCKED', blocked} end
  for i = 1, n do
    local most, window, name = tonumber(args[3 * i - 1]), tonumber(args[3 * i]), args[3 * i + 1]
    if tonumber(redis.call('GET', keys[i]) or '0') >= most then
      if name == 'PREFIX_BLOCKED' then
        redis.call('SET', block, '1', 'EX', args[3 * n + 2])
        return {name, tonumber(args[3 * n + 2])}
      end
      local ttl = redis.call('TTL', keys[i])
      return {name, ttl > 0 and ttl or window}
    end
  end
  for i = 1, n do
    if redis.call('INCR', keys[i]) == 1 then redis.call('EXPIRE', keys[i], args[3 * i]) end
  end
  return {'OK', 0}
end
