--[[
  sched-charge-3.lua: charge service to a tenant: vtime += tokens × costWeight / weight.

  KEYS[1] ready (zset)   KEYS[2] vtime (hash)   KEYS[3] weight (hash)
  ARGV[1] tenant id      ARGV[2] cost-weighted tokens (tokens × costWeight)

  Returns the new vtime (string). The ready score follows when the tenant is ready.
]]
local w = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '1')
local v = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') + tonumber(ARGV[2]) / w
redis.call('HSET', KEYS[2], ARGV[1], tostring(v))
redis.call('ZADD', KEYS[1], 'XX', tostring(v), ARGV[1])
return tostring(v)
