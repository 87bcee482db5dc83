--[[
  hb-dead-1.lua: worker ids whose heartbeat has expired (worker-heartbeats.ts).

  KEYS[1] workers (zset worker id → ms its heartbeat expires at)
  ARGV[1] now in ms, or "" for redis TIME   ARGV[2] at most this many ids

  Returns {now, id1, expiry1, id2, expiry2, …}, the longest expired first.
]]
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {now}
for i = 1, #dead do out[#out + 1] = dead[i] end
return out
