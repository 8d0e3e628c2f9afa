--[[ records.lua: the job record and the changes of state every transition shares (the second
  part of the library head, after lib.lua).

  A job is kept in hashes shared by all jobs, keyed by its id (keys.py), so the hot path reads
  and writes a whole batch with one HMGET / HSET per hash instead of two commands per job on a
  hash of its own, and writes no per-job bytes it has to encode:

    {p}:state    its state's name
    {p}:attempt  its attempt number, as text (absent: 0)
    {p}:claim    "<started_at>|<worker>" of its latest attempt (one string for a whole fetch)
    {p}:rec      the rest of its small fields: a msgpack stream (values one after another, no
                 array: Lua reads them as multiple returns, without building a table) in REC
                 order, false for none
    {p}:payload, {p}:result, {p}:error, {p}:progress   its opaque bytes

  Times an index keeps are not repeated: lease_until is the `{p}:active` score (ms), run_at the
  `{p}:scheduled` / `{p}:retrying` score, finished_at the `{p}:done:<state>` score.

  Every change of state goes through move(), so the per-queue counters stay exact.
]]

local REC = { 'function', 'queue', 'priority', 'ttl', 'max_crashes', 'key', 'expires_at',
  'errors', 'crashes', 'created_at', 'queued_at', 'cancel', 'n' }
-- What each must hold: a number, a string, text (UTF-8), a boolean, or (?) that or false.
local KINDS = { 'text', 'string', 'number', 'number', 'number', 'string?', 'number?', 'number',
  'number', 'number', 'number?', 'boolean', 'number' }
local STATES = { scheduled = true, queued = true, active = true, retrying = true,
  succeeded = true, failed = true, cancelled = true, expired = true }
local TERMINAL = { succeeded = true, failed = true, cancelled = true, expired = true }
local END_EVENT = {
  succeeded = 'job.succeeded', failed = 'job.failed', cancelled = 'job.cancelled',
  expired = 'job.expired',
}
local ERROR_HISTORY = 10 -- errors of failed attempts a job keeps (conveyor.job.ERROR_HISTORY)
local ATTEMPTS = {} -- attempt number -> its text, made once per number per library load

local function attempt_text(n)
  local text = ATTEMPTS[n]
  if not text then
    text = string.format('%d', n)
    if n < 1000 then ATTEMPTS[n] = text end
  end
  return text
end

-- The names of the fields of `r` (a record's values, in REC order) that are not what they
-- must be.
local function malformed(r)
  local bad = {}
  for i = 1, #REC do
    local kind, v = KINDS[i], r[i]
    local t = type(v)
    local ok
    if kind == 'text' then ok = t == 'string' and is_text(v)
    elseif kind == 'number?' then ok = t == 'number' or v == false
    elseif kind == 'string?' then ok = t == 'string' or v == false
    else ok = t == kind end
    if not ok then bad[#bad + 1] = REC[i] end
  end
  return bad
end

local function counted(...) return select('#', ...), { ... } end

-- A record's values from its bytes, as a table; nil and what is wrong when it is not one.
local function decode(blob)
  if not blob then return nil, 'no record for this id' end
  local ok, n, r = pcall(function() return counted(cmsgpack.unpack(blob)) end)
  if not ok or n ~= #REC then return nil, 'the record does not decode' end
  local bad = malformed(r)
  if #bad > 0 then return nil, 'fields missing or malformed: ' .. table.concat(bad, ', ') end
  return r
end

-- A job's state and attempt as found (text, as read); nil and what is wrong when they are not
-- a state and a number.
local function check_state(state, attempt)
  local bad = {}
  if not STATES[state] then bad[#bad + 1] = 'state' end
  if attempt and not num(attempt) then bad[#bad + 1] = 'attempt' end
  if #bad > 0 then return nil, 'fields missing or malformed: ' .. table.concat(bad, ', ') end
  return true
end

-- The job `id` as a table of named fields; nil and why when it is gone or damaged.
local function load(id)
  if not is_text(id) then return nil, 'the id is not UTF-8' end
  local state, attempt = redis.call('HGET', K.state, id), redis.call('HGET', K.attempt, id)
  local blob = redis.call('HGET', K.rec, id)
  if not state and not blob then return nil, 'no record for this id' end
  local ok, why = check_state(state, attempt)
  local r
  if ok then r, why = decode(blob) end
  if not r then return nil, why end
  local job = { id = id, state = state, attempt = num(attempt) or 0 }
  for i = 1, #REC do job[REC[i]] = r[i] end
  local claim = redis.call('HGET', K.claim, id)
  job.started_at, job.worker = false, false
  if claim then
    local at, worker = string.match(claim, '^([^|]*)|(.*)$')
    job.started_at = tonumber(at) or false
    if worker and worker ~= '' then job.worker = worker end
  end
  return job
end

local function pack_rec(job)
  local v = {}
  for i = 1, #REC do
    local value = job[REC[i]]
    if value == nil then value = false end
    v[i] = value
  end
  return cmsgpack.pack(unpack(v, 1, #REC))
end

-- Write what a cold-path transition changed (the state, attempt, claim and record).
local function save(job)
  redis.call('HSET', K.state, job.id, job.state)
  if job.attempt > 0 then redis.call('HSET', K.attempt, job.id, attempt_text(job.attempt)) end
  if job.started_at then
    redis.call('HSET', K.claim, job.id,
      string.format('%.6f', job.started_at) .. '|' .. (job.worker or ''))
  end
  redis.call('HSET', K.rec, job.id, pack_rec(job))
end

-- `err` (a msgspec JobError) with the job's error so far and its history behind it in
-- `previous`, the last ERROR_HISTORY in all: what JobError.after does in Python.
local function with_history(job, err)
  local old = redis.call('HGET', K.error, job.id)
  if err == '' or not old or old == '' then return err end
  local ok, earlier = pcall(cmsgpack.unpack, old)
  if not ok or type(earlier) ~= 'table' then return err end
  local new = cmsgpack.unpack(err)
  local previous = earlier.previous or {}
  earlier.previous = nil
  previous[#previous + 1] = earlier
  while #previous > ERROR_HISTORY - 1 do table.remove(previous, 1) end
  new.previous = previous
  return cmsgpack.pack(new)
end

local function set_error(job, err) -- err: '' keeps the job's error as it is
  if err ~= '' then redis.call('HSET', K.error, job.id, with_history(job, err)) end
end

local function move(job, state) -- counters follow every change of state
  count(job.queue, job.state, -1)
  count(job.queue, state, 1)
  job.state = state
end

local function unindex(job) -- take the job out of the index of its current state
  local state = job.state
  if state == 'queued' then
    redis.call('ZREM', K.ready .. job.queue, job.id)
  elseif state == 'scheduled' or state == 'retrying' or state == 'active' then
    redis.call('ZREM', K[state], job.id)
  else
    redis.call('ZREM', K.done .. state, job.id)
    redis.call('ZREM', K.expiry, job.id)
  end
end

local function release_key(job)
  if job.key and job.key ~= '' and redis.call('HGET', K.keys, job.key) == job.id then
    redis.call('HDEL', K.keys, job.key)
  end
end

local function ready_score(rank, front, seq) -- seq: a back number already taken
  if front then return rank * LANE + MIDDLE - next_seq('front') end
  return rank * LANE + MIDDLE + (seq or next_seq('back'))
end

-- To `queued`, at the back or the front of its lane (out of its old index already). `since`
-- is when it became ready (nil: a job put back keeps the time it first became ready).
local function make_ready(job, since, front)
  move(job, 'queued')
  job.worker = false
  if since then job.queued_at = since end
  save(job)
  redis.call('ZADD', K.ready .. job.queue,
    string.format('%d', ready_score(job.priority, front)), job.id)
  wake(job.queue)
end

-- To `scheduled` or `retrying`, due at run_at (out of its old index already).
local function schedule(job, state, run_at)
  move(job, state)
  job.worker = false
  save(job)
  redis.call('ZADD', K[state], run_at, job.id)
  wake(job.queue) -- blocked fetchers re-read when the next job falls due
end

-- To a terminal state (out of its old index already): kept until cleanup, key released.
local function finish_job(job, state, now, data)
  move(job, state)
  save(job)
  redis.call('ZADD', K.done .. state, now, job.id)
  if state ~= 'failed' then redis.call('ZADD', K.expiry, now + job.ttl, job.id) end
  release_key(job)
  emit_job(END_EVENT[state], now, job, data)
end

-- A damaged record (load or decode said why) to the dead-letter queue, out of the index of
-- `state` in `queue` that it was found in. What it held is kept as found in `{p}:raw:<id>`
-- (state, attempt, rec, and id for an id that is not UTF-8, which moves to 'bad-<hex of
-- it>'); a record is written in its place that every reader decodes: what could be read of
-- the old one, defaults for the rest, and an error saying why. Returns the id it ends under.
local function bury(id, queue, state, reason, now, worker)
  local found = {}
  for _, name in ipairs({ 'state', 'attempt', 'rec' }) do
    found[name] = redis.call('HGET', K[name], id)
  end
  local old = {}
  if found.rec then
    local ok, r = pcall(function() return { cmsgpack.unpack(found.rec) } end)
    if ok then old = r end
  end
  local function pick(i, kind, default)
    local v = old[i]
    if type(v) == kind and (kind ~= 'string' or is_text(v)) then return v end
    return default
  end
  local raw, new = {}, id
  for name, value in pairs(found) do
    if value then raw[#raw + 1], raw[#raw + 2] = name, value end
  end
  if not is_text(id) then
    new = 'bad-' .. id:gsub('.', function(c) return string.format('%02x', c:byte()) end)
    raw[#raw + 1], raw[#raw + 2] = 'id', id
    for _, hash in ipairs({ K.payload, K.result, K.error, K.progress, K.claim }) do
      local v = redis.call('HGET', hash, id)
      if v then
        redis.call('HSET', hash, new, v)
        redis.call('HDEL', hash, id)
      end
    end
    for _, hash in ipairs({ K.state, K.attempt, K.rec }) do redis.call('HDEL', hash, id) end
  end
  if #raw > 0 then redis.call('HSET', K.raw .. new, unpack(raw)) end
  if type(old[6]) == 'string' then release_key({ id = id, key = old[6] }) end
  local rank = pick(3, 'number', 2)
  if not (rank == 0 or rank == 1 or rank == 2 or rank == 3) then rank = 2 end
  local job = { id = new, state = state, queue = queue, attempt = num(found.attempt) or 0,
    ['function'] = pick(1, 'string', ''), priority = rank,
    ttl = pick(4, 'number', 0), max_crashes = pick(5, 'number', 0), key = false,
    expires_at = pick(7, 'number', false), errors = pick(8, 'number', 0) + 1,
    crashes = pick(9, 'number', 0), created_at = pick(10, 'number', now),
    queued_at = pick(11, 'number', false), cancel = false, n = pick(13, 'number', 0),
    started_at = now, worker = worker }
  redis.call('HSET', K.error, new, cmsgpack.pack({ type = 'DamagedRecord', message = reason,
    attempt = job.attempt, worker = worker, at = now }))
  move(job, 'failed')
  save(job)
  redis.call('ZADD', K.done .. 'failed', now, new)
  emit('job.failed', now, { error = 'DamagedRecord', reason = reason }, new, queue,
    job['function'], job.attempt)
  return new
end

-- Delete what is kept under `id` (a record that is gone from every index).
local function forget(id)
  for _, hash in ipairs({ K.state, K.attempt, K.claim, K.rec, K.payload, K.result, K.error,
      K.progress }) do
    redis.call('HDEL', hash, id)
  end
  redis.call('DEL', K.raw .. id)
end

-- Remove a record and everything that points at it (no event: callers publish their own).
local function remove(job)
  unindex(job)
  release_key(job)
  forget(job.id)
  count(job.queue, job.state, -1)
end

-- bury() for a record found damaged in the index of `state` (load said why), counted against
-- the queue it names when that much of it can be read.
local function bury_found(id, state, why, now, worker)
  local blob = redis.call('HGET', K.rec, id)
  local queue = ''
  if blob then
    local ok, _, _, q = pcall(cmsgpack.unpack_limit, blob, 2) -- offset, function, queue
    if ok and type(q) == 'string' and is_text(q) then queue = q end
  end
  return bury(id, queue, state, why, now, worker)
end

-- Ids of the jobs active under `worker` (a scan of the active index: rare calls only).
local function held_by(worker)
  local held, ids = {}, redis.call('ZRANGE', K.active, 0, -1)
  if #ids == 0 then return held end
  local claims = hmget(K.claim, ids)
  local suffix = '|' .. worker
  for i, id in ipairs(ids) do
    local claim = claims[i]
    if claim and string.sub(claim, -#suffix) == suffix then held[#held + 1] = id end
  end
  return held
end

-- Jobs by id in enqueue order (as the memory store and SQLite take them back); ids whose record is
-- gone or not active are dropped from the active index, damaged ones dead-lettered.
local function active_in_order(ids, now)
  local jobs = {}
  for _, id in ipairs(ids) do
    local job, why = load(id)
    if job and job.state == 'active' then
      jobs[#jobs + 1] = job
    else
      redis.call('ZREM', K.active, id)
      if not job and why ~= 'no record for this id' then
        bury_found(id, 'active', why, now, '')
      end
    end
  end
  table.sort(jobs, function(a, b) return a.n < b.n end)
  return jobs
end

-- Release the jobs active under `worker`, except the ids in `kept` (a set), to the front of
-- their lanes, attempt kept, no crash counted (unregister, release_strays). Returns how many.
local function release_held(worker, kept)
  local ids = {}
  for _, id in ipairs(held_by(worker)) do
    if not kept[id] then ids[#ids + 1] = id end
  end
  local now = clock()
  local released = 0
  for _, job in ipairs(active_in_order(ids, now)) do
    unindex(job)
    make_ready(job, nil, true)
    emit_job('job.requeued', now, job, { reason = 'released' })
    released = released + 1
  end
  return released
end

-- Make up to `limit` due scheduled and retrying jobs queued, soonest due first.
local function promote_due(now, limit)
  local s = redis.call('ZRANGEBYSCORE', K.scheduled, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
  local r = redis.call('ZRANGEBYSCORE', K.retrying, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
  local i, j, promoted = 1, 1, 0
  while promoted < limit and (i <= #s or j <= #r) do
    local id, due, index
    if j > #r or (i <= #s and (tonumber(s[i + 1]) < tonumber(r[j + 1])
        or (tonumber(s[i + 1]) == tonumber(r[j + 1]) and s[i] < r[j]))) then
      id, due, index, i = s[i], tonumber(s[i + 1]), 'scheduled', i + 2
    else
      id, due, index, j = r[j], tonumber(r[j + 1]), 'retrying', j + 2
    end
    local job, damage = load(id)
    if job then
      unindex(job)
      make_ready(job, due, false)
    else -- damaged: to the dead-letter queue
      redis.call('ZREM', K[index], id)
      bury_found(id, index, damage, now, '')
    end
    promoted = promoted + 1
  end
  return promoted
end

-- What readers decode a job from (conveyor/stores/redis/records.py), appended to `out` for
-- each id that has a record: id, state, attempt, claim, rec, payload, result, error,
-- progress, and the times its indexes keep (lease_until in ms, run_at, finished_at; false
-- when it is in none of them). One HMGET per hash for all the ids.
local function views(ids, out)
  if #ids == 0 then return out end
  local hashes = { K.state, K.attempt, K.claim, K.rec, K.payload, K.result, K.error,
    K.progress }
  local values = {}
  for h, hash in ipairs(hashes) do values[h] = hmget(hash, ids) end
  for k, id in ipairs(ids) do
    local state = values[1][k]
    if state or values[4][k] then
      out[#out + 1] = id
      for h = 1, #hashes do out[#out + 1] = values[h][k] end
      local lease, run_at, finished = false, false, false
      if state == 'active' then lease = redis.call('ZSCORE', K.active, id) or false
      elseif state == 'scheduled' or state == 'retrying' then
        run_at = redis.call('ZSCORE', K[state], id) or false
      elseif TERMINAL[state] then finished = redis.call('ZSCORE', K.done .. state, id) or false
      end
      out[#out + 1], out[#out + 2], out[#out + 3] = lease, run_at, finished
    end
  end
  return out
end
