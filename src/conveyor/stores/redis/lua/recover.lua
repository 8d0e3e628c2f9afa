--[[ recover: take back jobs whose worker is gone, counting a crash each. Either every job
  whose lease expired (the worker stopped renewing), or every job active under one worker
  (its supervisor saw the process die), whatever its lease says; that worker's untaken
  cancellation requests are dropped too.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  at most this many in one call (expired leases)
  ARGV[3]  worker id ('' = take jobs whose lease expired)
  ARGV[4]  reason the worker is gone ('' with expired leases)
  Returns  how many were taken back
  Events   job.requeued (data: reason "lease expired", or "worker lost" for a worker) for a
           job back at the front of its lane, queued_at kept; job.failed (data: error
           "WorkerLost") at max_crashes, with a msgpack JobError built here by cmsgpack
           (it must decode as conveyor.job.JobError; the message is the one
           conveyor.lifecycle.worker_lost writes)
]]

local now = clock()
local worker, reason = ARGV[3], ARGV[4]
local taken = 0

local function lost_error(job, crashes)
  local why = reason
  if why == '' then why = string.format('the lease of attempt %d expired', job.attempt) end
  return cmsgpack.pack({ type = 'WorkerLost',
    message = string.format('worker lost: %s (%d of %d crashes allowed)',
      why, crashes, job.max_crashes),
    attempt = job.attempt, worker = job.worker or '', at = now })
end

local function take_back(job)
  local crashes = job.crashes + 1
  taken = taken + 1
  unindex(job)
  if crashes >= job.max_crashes then
    set_error(job, lost_error(job, crashes))
    job.crashes = crashes
    finish_job(job, 'failed', now, { error = 'WorkerLost' })
  else
    job.crashes = crashes
    make_ready(job, nil, true)
    local why = 'lease expired'
    if worker ~= '' then why = 'worker lost' end
    emit_job('job.requeued', now, job, { reason = why })
  end
end

local candidates
if worker == '' then
  candidates = redis.call('ZRANGEBYSCORE', K.active, '-inf', string.format('%.0f', now * 1000),
    'LIMIT', 0, tonumber(ARGV[2]))
else
  candidates = held_by(worker)
  redis.call('DEL', K.cancels .. worker)
end
for _, job in ipairs(active_in_order(candidates, now)) do take_back(job) end
commit()
return taken
