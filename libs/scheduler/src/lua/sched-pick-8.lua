--[[
  sched-pick-8.lua: choose the ready tenant with the smallest virtual time.

  KEYS[1] ready (zset)   KEYS[2] vtime (hash)   KEYS[3] weight (hash)   KEYS[4] ready epoch (hash)
  KEYS[5] global virtual clock (string)   KEYS[6] active (zset tenant → ms)
  KEYS[7] active registration counter (hash)   KEYS[8] registration sequence (string)
  ARGV[1] now in ms, or "" for redis TIME
  ARGV[2] dispatch charge in tokens (advances vtime by charge / weight at once, so that
          dispatchers asking at the same moment spread over tenants by weight)
  ARGV[3..] tenants to skip

  Steps: 1. ZRANGE the first (#skipped + 1) entries, O(log N + k), and take the first not
  skipped; 2. global clock = max(clock, its vtime); 3. vtime += charge / weight;
  4. register the tenant as possibly holding active jobs (for the stalled-job sweep) before
  the caller moves a job to active.
  Returns {tenant, epoch, vtime} or false when nothing is ready.
]]
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local skip = {}
local nskip = 0
for i = 3, #ARGV do skip[ARGV[i]] = true; nskip = nskip + 1 end
local head = redis.call('ZRANGE', KEYS[1], 0, nskip, 'WITHSCORES')
local tenant, v
for i = 1, #head, 2 do
  if not skip[head[i]] then tenant = head[i]; v = tonumber(head[i + 1]); break end
end
if not tenant then return false end
local clock = tonumber(redis.call('GET', KEYS[5]) or '0')
if v > clock then redis.call('SET', KEYS[5], tostring(v)) end
local w = tonumber(redis.call('HGET', KEYS[3], tenant) or '1')
local charge = tonumber(ARGV[2])
local nv = v
if charge > 0 then
  nv = v + charge / w
  redis.call('ZADD', KEYS[1], 'XX', tostring(nv), tenant)
  redis.call('HSET', KEYS[2], tenant, tostring(nv))
end
redis.call('ZADD', KEYS[6], now, tenant)
redis.call('HSET', KEYS[7], tenant, redis.call('INCR', KEYS[8]))
return {tenant, redis.call('HGET', KEYS[4], tenant) or '0', tostring(v)}
