--[[
  sched-active-touch-3.lua: (re-)register a tenant as holding active jobs.

  KEYS[1] active (zset tenant → ms)   KEYS[2] registration counter (hash)   KEYS[3] sequence
  ARGV[1] now in ms, or "" for redis TIME   ARGV[2] tenant id
]]
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], redis.call('INCR', KEYS[3]))
return 1
