--[[
  sched-active-prune-2.lua: drop a tenant from the active index after its active list
  was seen empty.

  KEYS[1] active (zset)   KEYS[2] registration counter (hash)
  ARGV[1] tenant id       ARGV[2] the counter observed before the emptiness check

  Compare-and-delete: a dispatch registered since then keeps the tenant. The caller only
  tries tenants whose registration is older than a grace period (see stalled-sweeper.ts).
  Returns 1 removed, 0 kept.
]]
if (redis.call('HGET', KEYS[2], ARGV[1]) or '0') ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
