--[[ finish: apply a batch of outcomes, each fenced on (state active, attempt).

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2..] 8 values per outcome: id, attempt, state (succeeded | failed | cancelled |
           retrying | queued), has_result (1|0), result, error (msgspec JobError, '' = none),
           error type, delay (s, retrying only)
  Returns  per outcome: 1 accepted, 0 refused (no such job, not active, or another attempt)
  Events   per accepted outcome: job.succeeded, job.failed (data: error),
           job.cancelled, job.retrying (data: delay, error), job.requeued (data: reason
           "released")
]]

local now = clock()

local function apply(job, i)
  local state, err, err_type = ARGV[i + 2], ARGV[i + 5], ARGV[i + 6]
  if state == 'succeeded' then
    local extra = {}
    if ARGV[i + 3] == '1' then extra = { 'result', ARGV[i + 4] } end
    finish_job(job, state, now, nil, extra)
  elseif state == 'failed' then
    local data = nil
    if err ~= '' then data = { error = err_type } end
    finish_job(job, state, now, data, { 'errors', job.errors + 1, 'error', with_history(job, err) })
  elseif state == 'cancelled' then
    finish_job(job, state, now, nil)
  elseif state == 'retrying' then
    local delay = tonumber(ARGV[i + 7])
    schedule(job, state, now + delay,
      { 'errors', job.errors + 1, 'error', with_history(job, err) })
    emit_job('job.retrying', now, job, { delay = delay, error = err_type })
  else -- queued: released unfinished, back to the front of its lane
    make_ready(job, nil, true)
    emit_job('job.requeued', now, job, { reason = 'released' })
  end
end

local accepted = {}
local inactive = {} -- ids leaving the active index, for one ZREM
for i = 2, #ARGV, 8 do
  local job = load(ARGV[i])
  if job and job.state == 'active' and job.attempt == tonumber(ARGV[i + 1]) then
    inactive[#inactive + 1] = job.id
    apply(job, i)
    accepted[#accepted + 1] = 1
  else
    accepted[#accepted + 1] = 0
  end
end
bulk('ZREM', K.active, inactive)
commit()
return accepted
