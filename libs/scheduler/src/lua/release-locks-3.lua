--[[
  release-locks-3.lua: frees the active jobs of one tenant queue held by dead workers (or by
  given lock tokens), so that BullMQ's stalled check moves them back to wait at once.

  KEYS[1] the queue's 'active' list   KEYS[2] its 'stalled' set   KEYS[3] its 'stalled-check' key
  ARGV[1] the queue's job key prefix (BullMQ queue.toKey(''))
  ARGV[2..] worker ids and/or exact lock tokens

  A lock token is "<worker id>:<uuid>" (FairScheduler.next). For each job on the active list
  whose lock names one of the workers (or is one of the tokens): delete the lock, add the
  job to the stalled set (as if a stalled check had seen it already), and clear the
  stalled-check throttle; the caller then runs moveStalledJobsToWait, which moves exactly
  the jobs with no lock. A job whose lock belongs to anyone else is not touched, and a job
  whose worker renews it afterwards finds its lock gone (extendLock fails: lock lost).
  Returns the job ids released.
]]
local owners = {}
for i = 2, #ARGV do owners[ARGV[i]] = true end
local released = {}
local active = redis.call('LRANGE', KEYS[1], 0, -1)
for _, jobId in ipairs(active) do
  local lockKey = ARGV[1] .. jobId .. ':lock'
  local token = redis.call('GET', lockKey)
  if token then
    local worker = string.match(token, '^(.*):[^:]*$')
    if owners[token] or (worker and owners[worker]) then
      redis.call('DEL', lockKey)
      redis.call('SADD', KEYS[2], jobId)
      released[#released + 1] = jobId
    end
  end
end
if #released > 0 then redis.call('DEL', KEYS[3]) end
return released
