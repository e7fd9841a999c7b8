-- Record one receipt (a table: receipt, receipt_status, receipt_reason, at) for the attempt at ``index`` of
-- an OTP, accepted by its vendor at ``accepted_at``: the first receipt with evidence (DELIVERED, UNDELIVERED)
-- wins, a later one changes nothing; one without (NONE) is kept only until one with evidence comes. Returns
-- 1 when it was recorded. The receipts hash expires with the record. An undelivered receipt is routing evidence
-- against the attempt's vendor.
local function apply_receipt(record, receipts, index, accepted_at, r)
  local held = redis.call('HGET', receipts, index)
  if held then
    local prior = cjson.decode(held)
    if prior.receipt ~= 'NONE' or r.receipt == 'NONE' then return 0 end
  end
  r.receipt_latency_ms = math.max(0, math.floor((tonumber(r.at) - tonumber(accepted_at)) * 10000 + 0.5) / 10)
  redis.call('HSET', receipts, index, cjson.encode(r))
  local ttl = redis.call('TTL', record)
  if ttl > 0 then redis.call('EXPIRE', receipts, ttl) end
  local logged = redis.call('LINDEX', record .. ':attempts', index)
  if r.receipt == 'UNDELIVERED' and logged then score_attempt(record, cjson.decode(logged), 'u') end
  return 1
end
