--[[ unregister: remove a worker, and release every job still active under its id; drop the
  cancellation requests it never took.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  worker id
  Returns  how many jobs were released
  Events   job.requeued (data: reason "released") per job released, back at the front of its
           lane, attempt kept, no crash counted
]]

local worker = ARGV[2]
redis.call('DEL', K.worker .. worker)
redis.call('ZREM', K.workers, worker)
redis.call('DEL', K.cancels .. worker)
local released = release_held(worker, {})
commit()
return released
