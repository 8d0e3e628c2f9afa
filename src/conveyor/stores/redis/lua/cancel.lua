--[[ cancel: cancel a waiting job at once; ask an active one's worker to stop.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  job id
  Returns  { code, state }: code 0 no such job (state false), 1 cancelled now, 2 cancellation
           requested (state active), 3 left as it was (finished, or already asked)
  Events   job.cancelled (1), job.cancel_requested (2)
  Writes   (2) the job id at the tail of `{p}:cancels:<worker>` of the worker holding the job,
           whose EXPIRE is set to CANCELS_TTL: the worker takes it from there (keys.py)
]]

local CANCELS_TTL = 86400 -- seconds a request list nobody takes is kept (its worker is gone)

local job = load(ARGV[2])
if not job then return { 0, false } end
if job.state == 'active' then
  if job.cancel then return { 3, job.state } end
  job.cancel = true
  save(job)
  if job.worker then
    redis.call('RPUSH', K.cancels .. job.worker, job.id)
    redis.call('EXPIRE', K.cancels .. job.worker, CANCELS_TTL)
  end
  emit_job('job.cancel_requested', clock(), job, nil)
  commit()
  return { 2, job.state }
end
if TERMINAL[job.state] then return { 3, job.state } end
unindex(job)
finish_job(job, 'cancelled', clock(), nil)
commit()
return { 1, job.state }
