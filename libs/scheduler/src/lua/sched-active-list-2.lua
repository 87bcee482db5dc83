--[[
  sched-active-list-2.lua: a page of tenants that may hold active jobs, for the sweep.

  KEYS[1] active (zset tenant → ms)   KEYS[2] registration counter (hash)
  ARGV[1] now in ms, or "" for redis TIME   ARGV[2] offset   ARGV[3] count

  Returns {now, tenant1, ms1, counter1, tenant2, …}.
]]
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local page = redis.call('ZRANGE', KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1, 'WITHSCORES')
local out = {now}
for i = 1, #page, 2 do
  out[#out + 1] = page[i]
  out[#out + 1] = page[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], page[i]) or '0'
end
return out
