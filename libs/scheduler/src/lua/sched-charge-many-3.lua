--[[
  sched-charge-many-3.lua: sched-charge-3.lua for several tenants in one call (the worker
  charges every tenant of a decode step at once).

  KEYS[1] ready (zset)   KEYS[2] vtime (hash)   KEYS[3] weight (hash)
  ARGV pairs: tenant id, cost-weighted tokens (tokens × costWeight)

  Each tenant: vtime += tokens / weight, and its ready score follows when it is ready.
  Returns the number of tenants charged.
]]
for i = 1, #ARGV, 2 do
  local w = tonumber(redis.call('HGET', KEYS[3], ARGV[i]) or '1')
  local v = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0') + tonumber(ARGV[i + 1]) / w
  redis.call('HSET', KEYS[2], ARGV[i], tostring(v))
  redis.call('ZADD', KEYS[1], 'XX', tostring(v), ARGV[i])
end
return #ARGV / 2
