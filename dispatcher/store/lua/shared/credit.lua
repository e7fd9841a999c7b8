-- Credit the conversion of an OTP just verified to one attempt of its log: the latest by `vendor` (of send
-- `send`, unless nil), one the vendor accepted if there is one. Records its index in the record and answers
-- the attempt (its JSON), or '' when the log names none; the conversion is routing evidence for its vendor.
local function credit(record, log, send, vendor)
  local items = redis.call('LRANGE', log, 0, -1)
  local accepted, any, decoded = nil, nil, {}
  for i = #items, 1, -1 do
    local attempt = cjson.decode(items[i])
    decoded[i] = attempt
    if attempt.vendor == vendor and (send == nil or attempt.send_number == send) then
      any = any or i
      if attempt.outcome == 'DELIVERED' then accepted = i break end
    end
  end
  local index = accepted or any
  if not index then return '' end
  redis.call('HSET', record, F.converted_by, index - 1)
  if accepted then score_attempt(record, decoded[index], 'c') end
  return items[index]
end
