--[[
  settle-2.lua: the end of a completion (complete, cancel, fail, or a refused global
  reservation being rolled back).

  KEYS[1] tenant admission state (hash)     KEYS[2] completion record (hash)
  ARGV[1] now in ms, or "" for redis TIME
  ARGV[2] generated tokens (total)
  ARGV[3] seconds to keep the settled record (idempotency of a second settle)
  ARGV[4] "rollback" to undo the admission entirely (refund the request and all tokens and
          delete the record), or ""

  Steps: 1. absent or already settled → no-op; 2. concurrent -= 1 and outstanding -= the
  remaining contribution (never below 0); 3. the tokens bucket is settled with the actual
  count: refund reserved − generated × cw (a negative refund is debt), capped at capacity;
  4. mark settled with an expiry.
  Returns {1, previous contribution} or {0, 0} for a no-op.
]]
local r = redis.call('HMGET', KEYS[2], 'reserved', 'cw', 'generated', 'contribution', 'state')
if r[5] ~= 'A' then return {0, 0} end
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local rollback = ARGV[4] == 'rollback'
local g = math.max(tonumber(r[3]), tonumber(ARGV[2]))
local reserved = tonumber(r[1])
local contribution = tonumber(r[4])

local s = redis.call('HMGET', KEYS[1], 'concurrent', 'outstanding', 'tpm_level', 'tpm_ts', 'tpm_cap',
  'rpm_level', 'rpm_ts', 'rpm_cap')
local concurrent = math.max(0, tonumber(s[1] or '0') - 1)
local outstanding = math.max(0, tonumber(s[2] or '0') - contribution)
redis.call('HSET', KEYS[1], 'concurrent', concurrent, 'outstanding', outstanding)

local function refund(levelField, tsField, level, ts, cap, amount)
  if not level then return end
  cap = tonumber(cap)
  local l = tonumber(level) + (now - tonumber(ts)) * cap / 60000 + amount
  if l > cap then l = cap end
  redis.call('HSET', KEYS[1], levelField, tostring(l), tsField, now)
end

if rollback then
  refund('tpm_level', 'tpm_ts', s[3], s[4], s[5], reserved)
  refund('rpm_level', 'rpm_ts', s[6], s[7], s[8], 1)
  redis.call('DEL', KEYS[2])
else
  refund('tpm_level', 'tpm_ts', s[3], s[4], s[5], reserved - g * tonumber(r[2]))
  redis.call('HSET', KEYS[2], 'generated', g, 'contribution', 0, 'state', 'S')
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
end
return {1, contribution}
