--[[ promote: make due scheduled and retrying jobs of every queue `queued`, soonest due first.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  at most this many in one call
  Returns  how many were promoted
  Events   none (promotion is implied by the time a job was due: see events.py)
]]

local promoted = promote_due(clock(), tonumber(ARGV[2]))
commit()
return promoted
