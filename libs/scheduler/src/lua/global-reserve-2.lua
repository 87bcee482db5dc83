--[[
  global-reserve-2.lua: reserve one completion's cost-weighted tokens against the
  deployment-wide bound (MAX_QUEUED_TOKENS).

  KEYS[1] total queued milli-tokens (string)   KEYS[2] contributions (hash field → milli)
  ARGV[1] field "<tenantId>/<completionId>"    ARGV[2] amount (milli)   ARGV[3] bound (milli)

  Steps: 1. an existing contribution answers again; 2. check total + amount <= bound;
  3. write the contribution and the total.
  Returns 1 reserved (or already), 0 refused.
]]
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 1 end
local total = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[2])
if total + amount > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], amount)
redis.call('INCRBY', KEYS[1], amount)
return 1
