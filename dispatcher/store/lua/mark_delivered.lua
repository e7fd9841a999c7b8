-- KEYS: record, attempts, lease, due, postbacks due, the reference's receipt key, its early receipt key,
-- receipts, deadlines. ARGV: send number, vendor, vendor reference, the attempt (JSON), lease token, otp_id,
-- the time an owed postback is due by (if its job was lost), when the vendor accepted it, 1 if its receipts
-- will name it, the workflow step's deadline (a Unix time; 0: none), due grace (seconds), the reference its
-- receipts name, how many vendor codes the record lists at most.
-- Answers {1 if this send is now delivered by the attempt's vendor (0: a later send was first), the receipt with
-- evidence that came before the attempt and was counted for it now ('': none)}.
-- The record's fields this step reads, read once (every call a script makes costs Redis several µs).
local f = redis.call('HMGET', KEYS[1], F.country, F.channel, F.prefix, F.created_at, F.status, F.delivered_seq,
                     F.send_seq, F.vendor_codes, F.postbacks)
local length, ttl = push_attempt(KEYS[1], KEYS[2], ARGV[4])
local attempt = cjson.decode(ARGV[4])
count_outcome(KEYS[1], attempt, 'sent', ARGV[8], f)
score_attempt(KEYS[1], attempt, 's', f)
local early_receipt, counted = nil, ''
if ARGV[9] == '1' then
  -- the attempt just logged is where this reference's receipts go; one that came first is taken now
  local index = length - 1
  if ttl > 0 then
    redis.call('SET', KEYS[6], ARGV[6] .. ' ' .. index .. ' ' .. ARGV[1] .. ' ' .. ARGV[8], 'EX', ttl)
    local early = redis.call('GET', KEYS[7])
    if early then
      local taken = cjson.decode(early)
      early_receipt = taken.receipt
      if apply_receipt(KEYS[1], KEYS[8], index, ARGV[8], taken) == 1 and taken.receipt ~= 'NONE' then
        count_receipt(KEYS[1], KEYS[2], index, taken.receipt, taken.at, f)
        counted = taken.receipt
      end
      redis.call('DEL', KEYS[7])
    end
  end
end
local done = 0
local status, delivered_seq, send_seq = f[5], f[6], f[7]
if status == 'OPEN' and tonumber(delivered_seq) < tonumber(ARGV[1]) then
  local receipt_ref = ''
  if ARGV[9] == '1' then receipt_ref = ARGV[2] .. ' ' .. ARGV[12] end
  local set = {F.delivered_seq, ARGV[1], F.delivered_by, ARGV[2], F.failure, '', F.receipt_ref, receipt_ref}
  if ARGV[3] ~= '' then
    -- a code this vendor checks went out: it is asked first from now on, before those that sent codes earlier
    local listed = {{ARGV[2], ARGV[3]}}
    for _, pair in ipairs(cjson.decode(f[8] or '[]')) do
      if #listed < tonumber(ARGV[13]) and (pair[1] ~= ARGV[2] or pair[2] ~= ARGV[3]) then listed[#listed + 1] = pair end
    end
    for _, item in ipairs({F.vendor, ARGV[2], F.reference, ARGV[3], F.vendor_codes, cjson.encode(listed)}) do
      set[#set + 1] = item
    end
  end
  redis.call('HSET', KEYS[1], unpack(set))
  done = 1
  if tonumber(ARGV[1]) >= tonumber(send_seq) then
    not_due(KEYS[4], ARGV[6])
    -- the workflow step's deadline runs from now: a receipt that came first settles it (delivered: none;
    -- undelivered: the deadline is now, and the sweeper's deadline index takes it)
    local deadline = tonumber(ARGV[10] or '0')
    if early_receipt == 'DELIVERED' then
      redis.call('HSET', KEYS[1], F.step_delivered, ARGV[1])
    elseif deadline > 0 then
      if early_receipt == 'UNDELIVERED' then deadline = tonumber(ARGV[8]) end
      redis.call('HSET', KEYS[1], F.step_deadline, deadline)
      redis.call('ZADD', KEYS[9], deadline + tonumber(ARGV[11]), ARGV[6])
    end
  end
  owe_postback(KEYS[1], KEYS[5], ARGV[6], 'DELIVERED', ARGV[7], f[9])
end
end_run(KEYS[1], KEYS[3], ARGV[5], status ~= false)
return {done, counted}
