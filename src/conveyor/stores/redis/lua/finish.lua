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
local succeeded, expiry = {}, {} -- score, id pairs for one ZADD each (the hot path)
for i = 2, #ARGV, 8 do
  local id = ARGV[i]
  local v = redis.call('HMGET', K.job .. id, 'state', 'attempt', 'queue', 'function', 'key',
    'ttl', 'errors', 'priority')
  local attempt = tonumber(v[2])
  if v[1] == 'active' and attempt == tonumber(ARGV[i + 1]) then
    local job = { id = id, state = 'active', attempt = attempt, queue = v[3],
      ['function'] = v[4], key = v[5], ttl = tonumber(v[6]), errors = tonumber(v[7]),
      priority = tonumber(v[8]) }
    inactive[#inactive + 1] = id
    if ARGV[i + 2] == 'succeeded' then -- finish_job's steps, with the index writes batched
      move(job, 'succeeded')
      if ARGV[i + 3] == '1' then
        redis.call('HSET', K.job .. id, 'state', 'succeeded', 'finished_at', now,
          'lease_until', '', 'result', ARGV[i + 4])
      else
        redis.call('HSET', K.job .. id, 'state', 'succeeded', 'finished_at', now,
          'lease_until', '')
      end
      local n = #succeeded
      succeeded[n + 1], succeeded[n + 2] = now, id
      expiry[n + 1], expiry[n + 2] = now + job.ttl, id
      release_key(job)
      emit_job('job.succeeded', now, job, nil)
    else
      apply(job, i)
    end
    accepted[#accepted + 1] = 1
  else
    accepted[#accepted + 1] = 0
  end
end
bulk('ZREM', K.active, inactive)
bulk('ZADD', K.done .. 'succeeded', succeeded)
bulk('ZADD', K.expiry, expiry)
commit()
return accepted
