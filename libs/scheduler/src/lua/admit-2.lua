--[[
  admit-2.lua: one admission decision for one completion, all-or-nothing.

  KEYS[1] tenant admission state (hash): rpm_level, rpm_ts, tpm_level, tpm_ts, tpm_cap,
          concurrent, outstanding          (token amounts in milli cost-weighted tokens)
  KEYS[2] completion record (hash): reserved, cw, generated, contribution, state (A|S)

  ARGV[1] now in ms, or "" to use redis TIME (the override exists for tests)
  ARGV[2] requestsPerMinute          ARGV[3] tokensPerMinute (cost-weighted tokens)
  ARGV[4] maxConcurrentRequests      ARGV[5] maxOutstandingTokens (cost-weighted tokens)
  ARGV[6] maxTokens                  ARGV[7] costWeight in milli (integer)
  ARGV[8] retry hint in ms for concurrency/outstanding refusals

  Steps: 1. time; 2. an existing record answers again (idempotent); 3. refill both token
  buckets (continuous refill, capacity = the per-minute limit); 4. check requests bucket,
  concurrency, tokens bucket, outstanding, in that order; 5. only then write everything.

  Returns {code, value}: code 0 admitted (value = reserved milli-tokens), 1 already admitted
  (value = reserved), 6 already admitted and settled (value = reserved), 2 requestsPerMinute, 3 maxConcurrentRequests, 4 tokensPerMinute,
  5 maxOutstandingTokens (value = retryAfterMs). Fractions travel as strings.
]]
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

if redis.call('EXISTS', KEYS[2]) == 1 then
  local r = redis.call('HMGET', KEYS[2], 'reserved', 'state')
  if r[2] == 'S' then return {6, r[1]} end
  return {1, r[1]}
end

local rpm = tonumber(ARGV[2])
local tpmCap = tonumber(ARGV[3]) * 1000
local maxConc = tonumber(ARGV[4])
local maxOut = tonumber(ARGV[5]) * 1000
local cw = tonumber(ARGV[7])
local need = tonumber(ARGV[6]) * cw
local hint = tonumber(ARGV[8])

local s = redis.call('HMGET', KEYS[1], 'rpm_level', 'rpm_ts', 'tpm_level', 'tpm_ts', 'concurrent', 'outstanding')
local function refill(level, ts, cap)
  if not level then return cap end
  local l = tonumber(level) + (now - tonumber(ts)) * cap / 60000
  if l > cap then l = cap end
  return l
end
local rpmLevel = refill(s[1], s[2], rpm)
local tpmLevel = refill(s[3], s[4], tpmCap)
local concurrent = tonumber(s[5] or '0')
local outstanding = tonumber(s[6] or '0')

local function wait(missing, cap)
  local ms = math.ceil(missing * 60000 / cap)
  if ms < 1 then ms = 1 end
  return ms
end

if rpmLevel < 1 then return {2, wait(1 - rpmLevel, rpm)} end
if concurrent + 1 > maxConc then return {3, hint} end
if need > tpmCap then return {4, 60000} end
if tpmLevel < need then return {4, wait(need - tpmLevel, tpmCap)} end
if outstanding + need > maxOut then return {5, hint} end

redis.call('HSET', KEYS[1],
  'rpm_level', tostring(rpmLevel - 1), 'rpm_ts', now, 'rpm_cap', rpm,
  'tpm_level', tostring(tpmLevel - need), 'tpm_ts', now, 'tpm_cap', tpmCap,
  'concurrent', concurrent + 1, 'outstanding', outstanding + need)
redis.call('HSET', KEYS[2], 'reserved', need, 'cw', cw, 'generated', 0, 'contribution', need, 'state', 'A')
return {0, need}
