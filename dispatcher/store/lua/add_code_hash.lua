-- KEYS: record. ARGV: the code's digest, codes kept at most, the send it goes out with, the vendor carrying it.
local status = redis.call('HGET', KEYS[1], F.status)
if status ~= 'OPEN' then return 0 end
local kept = {ARGV[1] .. '@' .. ARGV[3] .. '@' .. ARGV[4]}
for stored in string.gmatch(redis.call('HGET', KEYS[1], F.code_hashes), '[^,]+') do
  if #kept < tonumber(ARGV[2]) then table.insert(kept, stored) end
end
redis.call('HSET', KEYS[1], F.code_hashes, table.concat(kept, ','))
return 1
