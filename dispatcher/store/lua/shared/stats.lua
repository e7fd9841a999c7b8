-- Per-minute outcome counters by route (vendor x channel x country), the store's stats (dispatcher/store/stats.py):
-- a hash per minute (STATS_PREFIX .. minute), one field per route and outcome, kept STATS_KEEP seconds after that
-- minute ends. ``attempt`` is a logged attempt (a table); the event happened at ``at`` (epoch seconds). The channel
-- is the attempt's (a workflow step's), else the one send-otp asked for; the country the record's metrics label.
-- ``known``: the record's country and channel fields ({country, channel}), when the caller has read them.
-- Returns the route's vendor, channel and country.
local function count_outcome(record, attempt, outcome, at, known)
  local f = known or redis.call('HMGET', record, F.country, F.channel)
  local channel = attempt.channel
  if type(channel) ~= 'string' or channel == '' then channel = f[2] or '' end
  if channel == '' then channel = 'none' end
  local country = f[1] or ''
  if country == '' then country = 'other' end
  local minute = math.floor(tonumber(at) / 60)
  local key = STATS_PREFIX .. minute
  -- the minute's hash is born with its first count, so its expiry (fixed by the minute) is set then
  if redis.call('HINCRBY', key, attempt.vendor .. '|' .. channel .. '|' .. country .. '|' .. outcome, 1) == 1 then
    redis.call('EXPIREAT', key, (minute + 1) * 60 + STATS_KEEP)
  end
  return attempt.vendor, channel, country
end

-- Epoch seconds of an ISO 8601 time as the attempt log writes it ("2026-11-30T08:54:14.123456Z" or "+hh:mm").
local function epoch_of(iso)
  local y, m, d, hh, mm, ss, zone = string.match(iso, '^(%d+)-(%d+)-(%d+)T(%d+):(%d+):([%d%.]+)(.*)$')
  y, m = tonumber(y), tonumber(m)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local year = y - era * 400
  local day = math.floor((153 * ((m + 9) % 12) + 2) / 5) + tonumber(d) - 1
  local days = era * 146097 + year * 365 + math.floor(year / 4) - math.floor(year / 100) + day - 719468
  local offset = 0
  local sign, oh, om = string.match(zone, '^([+-])(%d+):(%d+)$')
  if sign then offset = (sign == '+' and 1 or -1) * (tonumber(oh) * 3600 + tonumber(om) * 60) end
  return days * 86400 + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss) - offset
end

-- An OTP verified at ``at``: its conversion counted for the attempt credited (``credited``, its JSON; '': none,
-- counted for vendor 'none'), with the whole seconds from that attempt's acceptance by its vendor.
local function count_conversion(record, credited, at)
  if credited == '' then
    count_outcome(record, {vendor = 'none'}, 'converted', at)
    return
  end
  local attempt = cjson.decode(credited)
  count_outcome(record, attempt, 'converted', at)
  local accepted = epoch_of(attempt.started_at) + attempt.latency_ms / 1000
  count_outcome(record, attempt, 'verify_s:' .. math.max(0, math.floor(tonumber(at) - accepted)), at)
end

-- The first receipt with evidence (``receipt``: DELIVERED or UNDELIVERED; NONE counts nothing) for the attempt at
-- ``index`` of an OTP's log, received at ``at`` (``known``: as count_outcome's). Returns the route's vendor, channel
-- and country (none for NONE).
local function count_receipt(record, log, index, receipt, at, known)
  if receipt == 'NONE' then return end
  local logged = redis.call('LINDEX', log, index)
  if not logged then return end
  return count_outcome(record, cjson.decode(logged), string.lower(receipt), at, known)
end
