--[[
  hb-beat-1.lua: a worker process' heartbeat (worker-heartbeats.ts).

  KEYS[1] workers (zset worker id → ms its heartbeat expires at)
  ARGV[1] heartbeat TTL, ms   ARGV[2] now in ms, or "" for redis TIME   ARGV[3..] worker ids

  Per id: its previous expiry (absent: -1), then its expiry is set to now + TTL.
  Returns {now, previous expiry of ARGV[3], of ARGV[4], …}: a previous expiry below now
  means the heartbeat lapsed (peers may have taken its jobs); -1 for an id that beats for the
  first time, or that a peer forgot after taking its jobs over (hb-forget).
]]
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local ttl = tonumber(ARGV[1])
local out = {now}
for i = 3, #ARGV do
  local prev = redis.call('ZSCORE', KEYS[1], ARGV[i])
  out[#out + 1] = prev and tonumber(prev) or -1
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
end
return out
