--[[
  progress-2.lua: tokens generated so far release the matching outstanding reservation.

  KEYS[1] tenant admission state (hash)     KEYS[2] completion record (hash)
  ARGV[1] generated tokens so far (running total, not a delta)

  Steps: 1. only an active record counts; 2. generated = max(stored, given), so replays and
  reordering are idempotent; 3. contribution = max(0, reserved - generated × cw);
  4. outstanding -= the decrease (never below 0).
  Returns {1, contribution} or {0, -1} when the record is absent or settled.
]]
local r = redis.call('HMGET', KEYS[2], 'reserved', 'cw', 'generated', 'contribution', 'state')
if r[5] ~= 'A' then return {0, -1} end
local g = math.max(tonumber(r[3]), tonumber(ARGV[1]))
local contribution = math.max(0, tonumber(r[1]) - g * tonumber(r[2]))
local decrease = tonumber(r[4]) - contribution
if decrease > 0 then
  local o = tonumber(redis.call('HGET', KEYS[1], 'outstanding') or '0') - decrease
  if o < 0 then o = 0 end
  redis.call('HSET', KEYS[1], 'outstanding', o)
else
  contribution = tonumber(r[4])
end
redis.call('HSET', KEYS[2], 'generated', g, 'contribution', contribution)
return {1, contribution}
