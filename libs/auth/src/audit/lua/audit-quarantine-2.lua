--[[
  audit-quarantine-2.lua: moves one audit queue entry to the dead-letter stream, once.

  KEYS[1] the audit queue (stream)          KEYS[2] the dead-letter stream
  ARGV[1] the entry's id in the queue
  ARGV[2..] field, value pairs of the dead-letter entry

  Steps: 1. delete the entry from the queue; 2. only if it was still there (several
  writers may quarantine the same entry at once), append the dead-letter entry.
  Returns the dead-letter entry's id, or false when another writer moved it first.
]]
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return false end
return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
