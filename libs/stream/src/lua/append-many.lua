--[[
  append-many.lua: append-1.lua over several streams of ONE tenant in one call (the worker's
  per-step flush: one call per tenant instead of one per completion). The streams share the
  tenant's hash tag, so this is one slot on a Redis Cluster.

  KEYS[1..n] the streams
  ARGV[1] MAXLEN   ARGV[2] expiry once done, s   ARGV[3] safety expiry while running, s
  ARGV[4] wake message
  then for each key in order: wake channel, count c, then c triples (index, done, payload)
  in increasing index order. A key given no triples (count 0: the caller pads its streams
  up to the command's size with its last stream again) is only read.

  Each stream is handled exactly as append-1.lua handles it (idempotent by index; nothing
  after a done event; EXPIRE and PUBLISH when something was stored). A gap in any stream is
  an error for the call; streams before it were stored (a retry skips what is stored).
  Returns the last index stored of each stream, in KEYS order.
]]
local out = {}
local a = 5
for k = 1, #KEYS do
  local key = KEYS[k]
  local channel = ARGV[a]
  local count = tonumber(ARGV[a + 1])
  local first = a + 2
  a = first + 3 * count
  local last = -1
  local done = false
  local tail = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  if tail[1] then
    last = tonumber(string.match(tail[1][1], '^(%d+)')) - 1
    local f = tail[1][2]
    for i = 1, #f, 2 do
      if f[i] == 'd' and f[i + 1] == '1' then done = true end
    end
  end
  if not done then
    local added = 0
    for i = first, a - 1, 3 do
      local index = tonumber(ARGV[i])
      if index > last then
        if index ~= last + 1 then
          return redis.error_reply('GAP stream ' .. key .. ' holds up to index ' .. last .. ', got ' .. index)
        end
        redis.call('XADD', key, 'MAXLEN', '=', ARGV[1], (index + 1) .. '-0', 'd', ARGV[i + 1], 'e', ARGV[i + 2])
        last = index
        added = added + 1
        if ARGV[i + 1] == '1' then done = true; break end
      end
    end
    if added > 0 then
      if done then redis.call('EXPIRE', key, ARGV[2]) else redis.call('EXPIRE', key, ARGV[3]) end
      redis.call('PUBLISH', channel, ARGV[4])
    end
  end
  out[k] = last
end
return out
