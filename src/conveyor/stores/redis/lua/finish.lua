--[[ finish: apply a batch of outcomes, each fenced on (state active, attempt).

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2..] per outcome: id, attempt, state (succeeded | failed | cancelled | retrying |
           queued), has_result (1|0), result; then, unless succeeded (the hot path, 5 values
           in all), error (msgspec JobError, '' = none), error type, delay (s, retrying only)
  Returns  per outcome: 1 accepted, 0 refused (no such job, not active, or another attempt)
  Events   per accepted outcome: job.succeeded, job.failed (data: error),
           job.cancelled, job.retrying (data: delay, error), job.requeued (data: reason
           "released")
]]

local now = clock()
local now_text = string.format('%.6f', now) -- written once per call, not per job
local expire_at = {} -- ttl -> now + ttl, as text

local function apply(job, i) -- the other outcomes, on the record by name (the cold path)
  local state, err, err_type = ARGV[i + 2], ARGV[i + 5], ARGV[i + 6]
  if state == 'failed' then
    local data = nil
    if err ~= '' then data = { error = err_type } end
    job.errors = job.errors + 1
    set_error(job, err)
    finish_job(job, state, now, data)
  elseif state == 'cancelled' then
    finish_job(job, state, now, nil)
  elseif state == 'retrying' then
    local delay = tonumber(ARGV[i + 7])
    job.errors = job.errors + 1
    set_error(job, err)
    schedule(job, state, now + delay)
    emit_job('job.retrying', now, job, { delay = delay, error = err_type })
  else -- queued: released unfinished, back to the front of its lane
    make_ready(job, nil, true)
    emit_job('job.requeued', now, job, { reason = 'released' })
  end
end

local starts, ids = {}, {}
local i = 2
while i <= #ARGV do
  starts[#starts + 1], ids[#ids + 1] = i, ARGV[i]
  if ARGV[i + 2] == 'succeeded' then i = i + 5 else i = i + 8 end
end
local states, attempts, blobs = {}, {}, {}
if #ids > 0 then
  states, attempts, blobs = hmget(K.state, ids), hmget(K.attempt, ids), hmget(K.rec, ids)
end

local accepted = {}
local ended = {} -- ids whose outcome this call took (a batch may carry two for one attempt)
local inactive = {} -- ids leaving the active index, for one ZREM
local done, results = {}, {} -- id, value pairs for one HSET each
local succeeded, expiry = {}, {} -- score, id pairs for one ZADD each
for k = 1, #ids do
  local id, i = ids[k], starts[k]
  local fenced = not ended[id] and states[k] == 'active' and attempts[k]
    and num(attempts[k]) == num(ARGV[i + 1])
  local success, ok, fn, queue, ttl, key = ARGV[i + 2] == 'succeeded', false, nil, nil, nil, nil
  if fenced and success then -- what a success reads of the record must be there
    local _
    ok, _, fn, queue, _, ttl, _, key = pcall(cmsgpack.unpack_limit, blobs[k], 6)
    ok = ok and type(fn) == 'string' and type(queue) == 'string' and type(ttl) == 'number'
      and (key == false or type(key) == 'string')
  end
  local job = fenced and not ok and load(id)
  if ok or job then
    inactive[#inactive + 1] = id
    ended[id] = true
    if ok then -- finish_job's steps, the writes gathered
      local n = #done
      done[n + 1], done[n + 2] = id, 'succeeded'
      if ARGV[i + 3] == '1' then
        results[#results + 1], results[#results + 2] = id, ARGV[i + 4]
      end
      local at = expire_at[ttl]
      if not at then
        at = string.format('%.6f', now + ttl)
        expire_at[ttl] = at
      end
      succeeded[n + 1], succeeded[n + 2] = now_text, id
      expiry[n + 1], expiry[n + 2] = at, id
      count(queue, 'active', -1)
      count(queue, 'succeeded', 1)
      if key then release_key({ id = id, key = key }) end
      emit('job.succeeded', now, nil, id, queue, fn, num(attempts[k]))
    else
      apply(job, i)
    end
    accepted[#accepted + 1] = 1
  else
    accepted[#accepted + 1] = 0
  end
end
bulk('HSET', K.state, done)
bulk('HSET', K.result, results)
bulk('ZREM', K.active, inactive)
bulk('ZADD', K.done .. 'succeeded', succeeded)
bulk('ZADD', K.expiry, expiry)
commit()
return accepted
