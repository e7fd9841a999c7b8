-- One figure of INFO's ``text`` (0 if absent): a plain find, then the digits (half the time of a pattern's search).
local function info_figure(text, name)
  local at = string.find(text, '\n' .. name .. ':', 1, true)
  if not at then return 0 end
  return tonumber(string.match(text, '^%d+', at + #name + 2))
end

-- Send limits (dispatcher/guards.py builds them): each counter is counted, and if one goes over its limit, what
-- this send counted is taken back before answering, so a refused send uses no quota (one step in Redis: nobody
-- sees the counts in between; counting first spares a GET per counter). ``keys``: n counters, then the number
-- range's block key. ``args``: n, then for each counter its limit, window (seconds) and refusal code, then the
-- block's cool-down (seconds) and the share of maxmemory above which sends are refused. Returns {'OK', 0} or
-- {refusal code, seconds until it lifts}.
local function check_and_count(keys, args)
  local n = tonumber(args[1])
  local memory = redis.call('INFO', 'memory')
  local limit = info_figure(memory, 'maxmemory')
  local used = info_figure(memory, 'used_memory') - info_figure(memory, 'mem_not_counted_for_evict')
  if limit > 0 and used > limit * tonumber(args[3 * n + 3]) then return {'REDIS_FULL', 0} end
  local block = keys[n + 1]
  local blocked = redis.call('TTL', block)
  if blocked > 0 then return {'PREFIX_BLOCKED', blocked} end
  for i = 1, n do
    local most, window, name = tonumber(args[3 * i - 1]), tonumber(args[3 * i]), args[3 * i + 1]
    local count = redis.call('INCR', keys[i])
    if count == 1 then redis.call('EXPIRE', keys[i], window) end
    if count > most then
      for j = 1, i do redis.call('DECR', keys[j]) end
      if name == 'PREFIX_BLOCKED' then
        redis.call('SET', block, '1', 'EX', args[3 * n + 2])
        return {name, tonumber(args[3 * n + 2])}
      end
      local ttl = redis.call('TTL', keys[i])
      return {name, ttl > 0 and ttl or window}
    end
  end
  return {'OK', 0}
end
