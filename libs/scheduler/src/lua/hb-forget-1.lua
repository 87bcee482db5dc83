--[[
  hb-forget-1.lua: drops dead workers from the heartbeat set once their jobs were taken over.

  KEYS[1] workers (zset worker id → ms its heartbeat expires at)
  ARGV pairs: worker id, the expiry read when it was found dead

  Compare-and-delete: an id whose expiry changed since (it beat again: it was not dead) stays.
  Returns how many were dropped.
]]
local n = 0
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n
