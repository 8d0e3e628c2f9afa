--[[ publish: events from Python (worker.* and admin.* events), as one stream entry.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  how many events
  ARGV[3]  their msgpack array (conveyor.events.Event, ids empty)
  Returns  1
]]

append_events(ARGV[3], tonumber(ARGV[2]))
return 1
