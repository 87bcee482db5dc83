--[[
  append-1.lua: append token events to a completion's stream, idempotently.

  KEYS[1] the stream
  ARGV[1] MAXLEN (exact trim; MAX_OUTPUT_TOKENS + 1 never trims a real completion)
  ARGV[2] expiry once the done event is stored, s (STREAM_TTL_SECONDS)
  ARGV[3] safety expiry while running, s
  ARGV[4] wake channel   ARGV[5] wake message
  ARGV[6..] triples: index, done (0|1), payload (JSON)   — in increasing index order

  Entry ids are "<index + 1>-0", so an event is stored at most once.
  Steps: 1. read the last entry (index, done); 2. nothing is stored after a done event;
  3. skip events whose index is <= the last stored one (a replaying worker resumes);
  4. refuse a gap (index > last + 1) with an error; 5. XADD the rest, stop after done;
  6. when something was stored: EXPIRE (done → retention, else safety) and PUBLISH the wake.
  Returns the last index stored (-1 when empty).
]]
local key = KEYS[1]
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
if done then return last end

local added = 0
for i = 6, #ARGV, 3 do
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
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return last
