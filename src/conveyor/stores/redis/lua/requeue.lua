--[[ requeue: put failed, cancelled or expired jobs back to `queued`, at the back.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2..] job ids
  Returns  the ids requeued (others: unknown, in another state, or their unique key is held)
  Events   job.requeued (data: reason "requeued") per job requeued

  Errors and crashes restart from zero; the last error stays until the next attempt ends.
]]

local now = clock()
local done = {}
local REQUEUEABLE = { failed = true, cancelled = true, expired = true }
for i = 2, #ARGV do
  local job = load(ARGV[i])
  if job and REQUEUEABLE[job.state]
      and not (job.key and redis.call('HEXISTS', K.keys, job.key) == 1) then
    if job.key then redis.call('HSET', K.keys, job.key, job.id) end
    unindex(job)
    job.errors, job.crashes, job.cancel = 0, 0, false
    make_ready(job, now, false)
    emit_job('job.requeued', now, job, { reason = 'requeued' })
    done[#done + 1] = job.id
  end
end
commit()
return done
