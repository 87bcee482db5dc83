--[[
  hb-forget-1.lua: claims dead workers, before their jobs are taken over, by removing them
  from the heartbeat set.

  KEYS[1] workers (zset worker id → ms its heartbeat expires at)
  ARGV pairs: worker id, the expiry read when it was found dead

  Compare-and-delete: an id whose expiry changed since (it beat again: it was not dead) stays.
  A worker that beats after being claimed finds itself absent and gives its jobs up
  (hb-beat); one that beats first is not claimed. Returns the ids claimed.
]]
local claimed = {}
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
    claimed[#claimed + 1] = ARGV[i]
  end
end
return claimed
