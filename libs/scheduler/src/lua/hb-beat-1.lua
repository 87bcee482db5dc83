--[[
  hb-beat-1.lua: a worker process' heartbeat (worker-heartbeats.ts).

  KEYS[1] workers (zset worker id → ms its heartbeat expires at)
  ARGV[1] heartbeat TTL, ms   ARGV[2] now in ms, or "" for redis TIME
  ARGV[3..] pairs: worker id, 1 if it beat before (else 0)

  Per id: its previous expiry (absent: -1), then its expiry is set to now + TTL — except for
  an id that beat before and is absent: a peer claimed it (hb-forget) and is taking its jobs
  over; it is not added back (its process gives those jobs up and beats under a new id).
  Returns {now, previous expiry of the first id, of the second, …}: a previous expiry below
  now means the heartbeat lapsed but no peer claimed it (this beat renews it: none can now).
]]
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local ttl = tonumber(ARGV[1])
local out = {now}
for i = 3, #ARGV, 2 do
  local prev = redis.call('ZSCORE', KEYS[1], ARGV[i])
  out[#out + 1] = prev and tonumber(prev) or -1
  if prev or ARGV[i + 1] ~= '1' then redis.call('ZADD', KEYS[1], now + ttl, ARGV[i]) end
end
return out
