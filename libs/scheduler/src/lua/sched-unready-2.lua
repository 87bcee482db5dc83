--[[
  sched-unready-2.lua: unmark a tenant whose wait list was seen empty.

  KEYS[1] ready (zset)   KEYS[2] ready epoch (hash)
  ARGV[1] tenant id      ARGV[2] the epoch observed before the empty fetch

  Compare-and-delete: any enqueue, retry or stalled-job return after that observation
  bumped the epoch (after its job reached the wait list), so the tenant stays ready.
  Returns 1 removed, 0 kept.
]]
if (redis.call('HGET', KEYS[2], ARGV[1]) or '0') ~= ARGV[2] then return 0 end
return redis.call('ZREM', KEYS[1], ARGV[1])
