-- One delivery receipt, in one step. KEYS: the reference's receipt key, its early receipt key. ARGV: receipt
-- (DELIVERED, UNDELIVERED, NONE), the vendor's status word, reason, received at, the record key prefix, how
-- long an early receipt is kept (seconds).
-- Answers {kind, otp_id, attempt index, send open (1/0), latency ms, receipt recorded, the attempt's channel}: kind RECORDED (the
-- first receipt with evidence for that attempt, or a NONE one kept meanwhile), DUPLICATE (that attempt had
-- its receipt: nothing changed), EARLY (no attempt names this reference yet: kept a little while for the
-- attempt to take when it is recorded), GONE (the OTP is gone).
local r = {receipt = ARGV[1], receipt_status = ARGV[2], at = tonumber(ARGV[4])}
if ARGV[3] ~= '' then r.receipt_reason = ARGV[3] end
local ref = redis.call('GET', KEYS[1])
if not ref then
  local parked = redis.call('GET', KEYS[2])
  if not parked or (cjson.decode(parked).receipt == 'NONE' and r.receipt ~= 'NONE') then
    redis.call('SET', KEYS[2], cjson.encode(r), 'EX', tonumber(ARGV[6]))
  end
  return {'EARLY', '', -1, 0, '', 0, ''}
end
local otp_id, index, send_seq, accepted_at = string.match(ref, '^(%S+) (%S+) (%S+) (%S+)$')
local record = ARGV[5] .. otp_id
if redis.call('EXISTS', record) == 0 then return {'GONE', otp_id, tonumber(index), 0, '', 0, ''} end
local recorded = apply_receipt(record, record .. ':receipts', index, accepted_at, r)
local f = redis.call('HMGET', record, F.status, F.send_seq, F.expires_at, F.channel)
local open = 0
if f[1] == 'OPEN' and f[2] == send_seq and tonumber(f[3]) > r.at then open = 1 end
local held = cjson.decode(redis.call('HGET', record .. ':receipts', index))
local kind = 'RECORDED'
if recorded == 0 then kind = 'DUPLICATE' end
local attempt = redis.call('LINDEX', record .. ':attempts', tonumber(index))
local channel = attempt and cjson.decode(attempt).channel
if type(channel) ~= 'string' then channel = f[4] or '' end
return {kind, otp_id, tonumber(index), open, tostring(held.receipt_latency_ms), recorded, channel}
