--[[ lib.lua: the helpers every transition shares. scripts.py puts this text in front of each
  script, so there is one copy of the rules for indexes, counters, wake-ups and events.

  KEYS[1..17]  the base keys, in keys.py BASE_FIELDS order (families end in ':', the script
               appends a queue, id or state to them)
  ARGV[1]      how many events the stream keeps (about: XADD MINID ~)

  Job hash fields follow keys.py; an empty string stands for None. Every change of state goes
  through move(), so the per-queue counters stay exact; every event through emit(), and the
events of one script go out in one stream entry (commit).
]]

local K = {
  job = KEYS[1], ready = KEYS[2], wake = KEYS[3], scheduled = KEYS[4], retrying = KEYS[5],
  active = KEYS[6], done = KEYS[7], expiry = KEYS[8], keys = KEYS[9], counts = KEYS[10],
  queues = KEYS[11], paused = KEYS[12], seq = KEYS[13], events = KEYS[14],
  workers = KEYS[15], worker = KEYS[16], cancels = KEYS[17],
}
local EVENTS_MAX = ARGV[1]
local NULL = cjson.null -- cmsgpack packs it as nil: a None kept inside event data
local LANE = 2 ^ 41 -- ready score = rank * LANE + MIDDLE + seq (back) or - seq (front)
local MIDDLE = 2 ^ 40
local WAKE_TOKENS = 4 -- a wake list past twice this many tokens is cut back to this many
local ERROR_HISTORY = 10 -- errors of failed attempts a job keeps (conveyor.job.ERROR_HISTORY)
local TERMINAL = { succeeded = true, failed = true, cancelled = true, expired = true }
local END_EVENT = {
  succeeded = 'job.succeeded', failed = 'job.failed', cancelled = 'job.cancelled',
  expired = 'job.expired',
}
local FIELDS = {
  'state', 'queue', 'function', 'priority', 'attempt', 'errors', 'crashes', 'max_crashes',
  'key', 'ttl', 'worker', 'cancel',
}
local NUMBERS = { 'priority', 'attempt', 'errors', 'crashes', 'max_crashes', 'ttl' }

local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Writes gathered during a script and made once by commit(): counters, wake-ups, sequences.
local pending = { counts = {}, wake = {}, seq = nil, events = {} }

local function count(queue, state, delta)
  local field = state .. ':' .. queue
  pending.counts[field] = (pending.counts[field] or 0) + delta
end

local function wake(queue)
  pending.wake[queue] = (pending.wake[queue] or 0) + 1
end

local function quiet(queue) -- the queue is empty: drop its stale wake-up tokens
  pending.wake[queue] = nil
  redis.call('DEL', K.wake .. queue)
end

-- Counters in `{p}:seq`: back / front (ready scores; a job's `n`, its enqueue order, is a
-- back number too).
local function next_seq(name)
  if not pending.seq then
    local v = redis.call('HMGET', K.seq, 'back', 'front')
    pending.seq = { back = tonumber(v[1]) or 0, front = tonumber(v[2]) or 0 }
  end
  pending.seq[name] = pending.seq[name] + 1
  return pending.seq[name]
end

-- One stream entry holds the events of one script (a msgpack array in field `b`, at most
-- EVENTS_PER_ENTRY). Its id is "<events written so far, these included>-0" (counted from the
-- clock in us when the count began): an event's number is its place in that count, a reader
-- resumes after a number (XREAD after "<number>-0", then skips what it has seen of the first
-- entry), and MINID ~ keeps about the last EVENTS_MAX.
local EVENTS_PER_ENTRY = 1000
local function entry_id(number) -- digits, never Lua's exponent notation
  return string.format('%.0f-0', math.max(0, number))
end

local function append_events(blob, n)
  local total = redis.call('HINCRBY', K.seq, 'events', n)
  if total == n then -- a new count (a new store, or one that lost its data): start it at the
    -- clock in microseconds, so that numbers never go back and a reader's position stays valid
    local t = redis.call('TIME')
    total = tonumber(t[1]) * 1000000 + tonumber(t[2]) + n
    redis.call('HSET', K.seq, 'events', string.format('%.0f', total))
  end
  local added = redis.pcall('XADD', K.events, 'MINID', '~', entry_id(total - EVENTS_MAX),
    entry_id(total), 'b', blob)
  if added.err then -- a stream whose ids ran ahead of the count (written by an older layout)
    local info = redis.call('XINFO', 'STREAM', K.events)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        total = tonumber(string.match(info[i + 1], '^(%d+)')) + n
      end
    end
    redis.call('HSET', K.seq, 'events', string.format('%.0f', total))
    redis.call('XADD', K.events, 'MINID', '~', entry_id(total - EVENTS_MAX), entry_id(total),
      'b', blob)
  end
end

local function flush_events()
  local events = pending.events
  if #events > 0 then
    pending.events = {}
    append_events(cmsgpack.pack(events), #events)
  end
end

-- `n` back numbers at once, in one write (enqueue: one per job); returns the one before the
-- first. Numbers taken afterwards, in this script or another, come after them.
local function reserve_back(n)
  if pending.seq then
    local before = pending.seq.back
    pending.seq.back = before + n
    return before
  end
  return redis.call('HINCRBY', K.seq, 'back', n) - n
end

local function commit()
  for field, delta in pairs(pending.counts) do
    if delta ~= 0 then redis.call('HINCRBY', K.counts, field, delta) end
  end
  for queue, n in pairs(pending.wake) do
    local tokens = {}
    for i = 1, math.min(n, WAKE_TOKENS) do tokens[i] = '1' end
    if redis.call('LPUSH', K.wake .. queue, unpack(tokens)) > 2 * WAKE_TOKENS then
      redis.call('LTRIM', K.wake .. queue, 0, WAKE_TOKENS - 1)
    end
  end
  if pending.seq then
    redis.call('HSET', K.seq, 'back', pending.seq.back, 'front', pending.seq.front)
  end
  flush_events()
end

-- One variadic command in chunks, for batches (Lua's unpack has a limit of a few thousand).
local function bulk(command, key, args)
  for first = 1, #args, 2000 do
    local last = math.min(first + 1999, #args)
    redis.call(command, key, unpack(args, first, last))
  end
end

local function emit(event)
  local events = pending.events
  events[#events + 1] = event
  if #events >= EVENTS_PER_ENTRY then flush_events() end
end

local function emit_job(kind, now, job, data)
  emit({ type = kind, time = now, job_id = job.id, queue = job.queue,
    ['function'] = job['function'], attempt = job.attempt, data = data })
end

-- The indexed fields of a job (plus `extra` ones), numbers converted; nil when it is gone.
local function load(id, extra)
  local names = { unpack(FIELDS) }
  for _, name in ipairs(extra or {}) do names[#names + 1] = name end
  local values = redis.call('HMGET', K.job .. id, unpack(names))
  if not values[1] then return nil end
  local job = { id = id }
  for i, name in ipairs(names) do job[name] = values[i] end
  for _, name in ipairs(NUMBERS) do job[name] = tonumber(job[name]) end
  if job.worker == '' then job.worker = false end
  return job
end

-- `err` (a msgspec JobError) with the job's error so far and its history behind it in
-- `previous`, the last ERROR_HISTORY in all: what JobError.after does in Python.
local function with_history(job, err)
  local old = redis.call('HGET', K.job .. job.id, 'error')
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

-- True when `s` is UTF-8 that Python decodes (a fast path for plain ASCII).
local function is_text(s)
  if not string.find(s, '[\128-\255]') then return true end
  local i, n = 1, #s
  while i <= n do
    local c, size, low, high = s:byte(i), 0, 0x80, 0xBF
    if c < 0x80 then size = 1
    elseif c >= 0xC2 and c <= 0xDF then size = 2
    elseif c >= 0xE0 and c <= 0xEF then
      size = 3
      if c == 0xE0 then low = 0xA0 elseif c == 0xED then high = 0x9F end
    elseif c >= 0xF0 and c <= 0xF4 then
      size = 4
      if c == 0xF0 then low = 0x90 elseif c == 0xF4 then high = 0x8F end
    else return false end
    for j = i + 1, i + size - 1 do
      local b = s:byte(j)
      if not b or b < low or b > high then return false end
      low, high = 0x80, 0xBF
    end
    i = i + size
  end
  return true
end

-- Like load(), for a record about to be handed to a worker or made ready: nil and what is
-- wrong with it when the id is not UTF-8, the record is gone or not a hash, or a field the
-- scripts and workers need is missing or not a number (written behind Conveyor's back).
local REQUIRED = { 'state', 'queue', 'function', 'priority', 'attempt', 'errors', 'crashes',
  'max_crashes', 'ttl' }
local function load_checked(id, extra)
  if not is_text(id) then return nil, 'the id is not UTF-8' end
  local names = { unpack(FIELDS) }
  for _, name in ipairs(extra or {}) do names[#names + 1] = name end
  local values = redis.pcall('HMGET', K.job .. id, unpack(names))
  if values.err then
    return nil, 'the record is a ' .. redis.call('TYPE', K.job .. id).ok .. ', not a hash'
  end
  local job = { id = id }
  for i, name in ipairs(names) do job[name] = values[i] end
  local bad = {}
  for _, name in ipairs(REQUIRED) do
    if not job[name] then bad[#bad + 1] = name end
  end
  if #bad == #REQUIRED and redis.call('EXISTS', K.job .. id) == 0 then
    return nil, 'no record for this id'
  end
  for _, name in ipairs(NUMBERS) do
    local value = tonumber(job[name])
    if job[name] and not value then bad[#bad + 1] = name end
    job[name] = value
  end
  if job['function'] and not is_text(job['function']) then bad[#bad + 1] = 'function' end
  if #bad > 0 then return nil, 'fields missing or malformed: ' .. table.concat(bad, ', ') end
  if job.worker == '' then job.worker = false end
  return job
end

local function set(job, fields, extra)
  for _, value in ipairs(extra or {}) do fields[#fields + 1] = value end
  redis.call('HSET', K.job .. job.id, unpack(fields))
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
  if job.key and redis.call('HGET', K.keys, job.key) == job.id then
    redis.call('HDEL', K.keys, job.key)
  end
end

local function ready_score(rank, front, seq) -- seq: a back number already taken
  if front then return rank * LANE + MIDDLE - next_seq('front') end
  return rank * LANE + MIDDLE + (seq or next_seq('back'))
end

-- To `queued`, at the back or the front of its lane (out of its old index already). `since`
-- is when it became ready (nil: a job put back keeps the time it first became ready).
local function make_ready(job, since, front, extra)
  move(job, 'queued')
  local fields = { 'state', 'queued', 'run_at', '', 'worker', '', 'lease_until', '' }
  if since then fields[#fields + 1], fields[#fields + 2] = 'queued_at', since end
  set(job, fields, extra)
  redis.call('ZADD', K.ready .. job.queue, ready_score(job.priority, front), job.id)
  wake(job.queue)
end

-- To `scheduled` or `retrying`, due at run_at (out of its old index already).
local function schedule(job, state, run_at, extra)
  move(job, state)
  set(job, { 'state', state, 'run_at', run_at, 'worker', '', 'lease_until', '' }, extra)
  redis.call('ZADD', K[state], run_at, job.id)
  wake(job.queue) -- blocked fetchers re-read when the next job falls due
end

-- To a terminal state (out of its old index already): kept until cleanup, key released.
local function finish_job(job, state, now, data, extra)
  move(job, state)
  set(job, { 'state', state, 'finished_at', now, 'lease_until', '' }, extra)
  redis.call('ZADD', K.done .. state, now, job.id)
  if state ~= 'failed' then redis.call('ZADD', K.expiry, now + job.ttl, job.id) end
  release_key(job)
  emit_job(END_EVENT[state], now, job, data)
end

-- A damaged record (load_checked said why) to the dead-letter queue, out of the index of
-- `state` in `queue` that it was found in: what it held is kept (a record that was not a hash
-- as `raw`), fields filled in so every reader decodes it, the error says why. An id that is
-- not UTF-8 moves to 'bad-<hex of it>' and is kept as `raw_id`. Returns the id it ends under.
local function bury(id, queue, state, reason, now, worker)
  local key = K.job .. id
  local kind = redis.call('TYPE', key).ok
  local fields = {}
  if kind == 'hash' then
    local flat = redis.call('HGETALL', key)
    for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
  elseif kind == 'string' then
    fields.raw = redis.call('GET', key)
  elseif kind ~= 'none' then
    fields.raw = redis.call('DUMP', key)
  end
  redis.call('DEL', key)
  local new = id
  if not is_text(id) then
    new = 'bad-' .. id:gsub('.', function(c) return string.format('%02x', c:byte()) end)
    fields.raw_id = id
  end
  if fields.key then
    release_key({ id = id, key = fields.key })
    fields.key = nil
  end
  if fields['function'] and not is_text(fields['function']) then
    fields.raw_function, fields['function'] = fields['function'], nil
  end
  local defaults = { priority = 2, attempt = 0, errors = 0, crashes = 0, max_crashes = 0,
    ttl = 0, created_at = now }
  for name, value in pairs(defaults) do
    if not tonumber(fields[name]) then fields[name] = value end
  end
  local attempt = tonumber(fields.attempt)
  local err = cmsgpack.pack({ type = 'DamagedRecord', message = reason, attempt = attempt,
    worker = worker, at = now })
  fields.id, fields.queue, fields.state, fields.error = new, queue, 'failed', err
  fields.errors = tonumber(fields.errors) + 1
  fields['function'] = fields['function'] or ''
  fields.payload = fields.payload or ''
  fields.started_at = fields.started_at or now
  fields.finished_at, fields.worker, fields.lease_until, fields.run_at = now, worker, '', ''
  local flat = {}
  for name, value in pairs(fields) do flat[#flat + 1], flat[#flat + 2] = name, value end
  redis.call('HSET', K.job .. new, unpack(flat))
  count(queue, state, -1)
  count(queue, 'failed', 1)
  redis.call('ZADD', K.done .. 'failed', now, new)
  emit({ type = 'job.failed', time = now, job_id = new, queue = queue,
    ['function'] = fields['function'], attempt = attempt,
    data = { error = 'DamagedRecord', reason = reason } })
  return new
end

-- Remove a record and everything that points at it (no event: callers publish their own).
local function remove(job)
  unindex(job)
  release_key(job)
  redis.call('DEL', K.job .. job.id)
  count(job.queue, job.state, -1)
end

-- Ids of the jobs active under `worker` (a scan of the active index: rare calls only).
local function held_by(worker)
  local held = {}
  for _, id in ipairs(redis.call('ZRANGE', K.active, 0, -1)) do
    if redis.call('HGET', K.job .. id, 'worker') == worker then held[#held + 1] = id end
  end
  return held
end

-- Jobs by id, loaded with `extra` fields, in enqueue order (as memory.py and SQLite take
-- them back); ids whose record is gone or not active are dropped from the active index.
local function active_in_order(ids, extra)
  local jobs = {}
  for _, id in ipairs(ids) do
    local job = load(id, extra)
    if job and job.state == 'active' then
      jobs[#jobs + 1] = job
    else
      redis.call('ZREM', K.active, id)
    end
  end
  table.sort(jobs, function(a, b) return (tonumber(a.n) or 0) < (tonumber(b.n) or 0) end)
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
  for _, job in ipairs(active_in_order(ids, { 'n' })) do
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
    local id, due
    if j > #r or (i <= #s and (tonumber(s[i + 1]) < tonumber(r[j + 1])
        or (tonumber(s[i + 1]) == tonumber(r[j + 1]) and s[i] < r[j]))) then
      id, due, i = s[i], tonumber(s[i + 1]), i + 2
    else
      id, due, j = r[j], tonumber(r[j + 1]), j + 2
    end
    local job, damage = load_checked(id)
    if job then
      unindex(job)
      make_ready(job, due, false)
    else -- damaged: to the dead-letter queue, counted against the queue it names (if any)
      local state = redis.call('ZSCORE', K.scheduled, id) and 'scheduled' or 'retrying'
      redis.call('ZREM', K.scheduled, id)
      redis.call('ZREM', K.retrying, id)
      local queue = redis.call('TYPE', K.job .. id).ok == 'hash'
        and redis.call('HGET', K.job .. id, 'queue') or ''
      if not is_text(queue) then queue = '' end
      bury(id, queue, state, damage, now, '')
    end
    promoted = promoted + 1
  end
  return promoted
end

