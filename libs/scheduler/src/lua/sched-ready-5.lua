--[[
  sched-ready-5.lua: mark a tenant ready (a job may have entered its wait list).

  KEYS[1] ready (zset tenant → vtime)   KEYS[2] vtime (hash)   KEYS[3] weight (hash)
  KEYS[4] ready epoch (hash)            KEYS[5] global virtual clock (string)
  ARGV[1] tenant id   ARGV[2] weight, or "" to keep the stored one
  ARGV[3] pub/sub channel told the tenant id when it becomes ready ("" or absent: none)

  Steps: 1. store the weight (latest wins); 2. bump the ready epoch, so a dispatcher that
  saw the queue empty before this call cannot unmark the tenant (compare-and-delete);
  3. a tenant already ready keeps its place; 4. a tenant becoming ready starts at
  max(own vtime, global clock, smallest ready vtime): no credit for idle time; 5. a tenant
  that became ready is published, so idle dispatch loops look at once instead of at their
  next poll (a tenant already ready is no news to them).
  Returns the tenant's vtime (string).
]]
local tenant = ARGV[1]
if ARGV[2] ~= '' then redis.call('HSET', KEYS[3], tenant, ARGV[2]) end
redis.call('HINCRBY', KEYS[4], tenant, 1)
local current = redis.call('ZSCORE', KEYS[1], tenant)
if current then return current end
local v = tonumber(redis.call('HGET', KEYS[2], tenant) or '0')
local clock = tonumber(redis.call('GET', KEYS[5]) or '0')
if clock > v then v = clock end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if head[2] and tonumber(head[2]) > v then v = tonumber(head[2]) end
redis.call('HSET', KEYS[2], tenant, tostring(v))
redis.call('ZADD', KEYS[1], tostring(v), tenant)
if ARGV[3] and ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], tenant) end
return tostring(v)
