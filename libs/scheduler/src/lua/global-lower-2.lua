--[[
  global-lower-2.lua: lower one completion's contribution to the global queued work.
  Absolute and monotone (only ever decreases), so retries and reordered calls converge.

  KEYS[1] total queued milli-tokens (string)   KEYS[2] contributions (hash)
  ARGV[1] field "<tenantId>/<completionId>"    ARGV[2] new contribution (milli); 0 removes it

  Returns the decrease applied (0 when absent or not lower).
]]
local old = redis.call('HGET', KEYS[2], ARGV[1])
if not old then return 0 end
old = tonumber(old)
local new = tonumber(ARGV[2])
if new >= old then return 0 end
if new <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  new = 0
else
  redis.call('HSET', KEYS[2], ARGV[1], new)
end
local total = redis.call('DECRBY', KEYS[1], old - new)
if total < 0 then redis.call('SET', KEYS[1], 0) end
return old - new
