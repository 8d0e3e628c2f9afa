--[[ lib.lua: the plumbing every transition shares: the call's keys, counters, wake-ups,
  sequences and events, gathered during a call and written once by commit(). It is the head
  of the function library scripts.py builds (FUNCTION LOAD), followed by records.lua (the job
  record and the state changes) and one function per transition file: the helpers are made
  once per library load, not on every call. Each function's body runs with KEYS and ARGV as
  below, after begin() has bound them and emptied what a call gathers.

  KEYS[1]      the `{prefix}` hash tag: every key is named from it (NAMES below, the layout
               keys.py describes; tests/unit/test_keys.py checks they agree). One declared key
               instead of 25 costs a call a tenth less server time, and every key still falls
               in the tag's slot, as Redis Cluster needs.
  ARGV[1]      how many events the stream keeps (about: XADD MINID ~)
]]

-- The globals the hot path calls, bound as upvalues by begin(): a function library's
-- globals sit behind a protecting metatable, so each global read costs two table lookups.
-- (This function is defined before the locals below and so reads the globals themselves.)
local function globals()
  return type, tonumber, pcall, unpack, cmsgpack, string, math
end
local type, tonumber, pcall, unpack, cmsgpack, string, math

local K -- the keys of the running call, by name (begin)
local NAMES = { 'state', 'attempt', 'claim', 'rec', 'payload', 'result', 'error', 'progress',
  'raw', 'ready', 'wake', 'scheduled', 'retrying', 'active', 'done', 'expiry', 'keys', 'counts',
  'queues', 'paused', 'seq', 'events', 'workers', 'worker', 'cancels' }
-- Families: the name is a prefix, to which a script appends a queue, id or state.
local FAMILIES = { raw = true, ready = true, wake = true, done = true, worker = true,
  cancels = true }
local KEYSETS = {} -- tag -> its keys by name, made once per tag
local EVENTS_MAX
local NULL -- cjson.null (begin: a library's load sees no globals but `redis`); cmsgpack packs
-- it as nil: a None kept inside event data
local LANE = 2 ^ 41 -- ready score = rank * LANE + MIDDLE + seq (back) or - seq (front)
local MIDDLE = 2 ^ 40
local WAKE_TOKENS = 4 -- a wake list past twice this many tokens is cut back to this many

local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- tonumber() remembered for the length of one call: the fields of a batch mostly repeat
-- ('0', '3', the same ttl), and parsing a number is among the dearer things a script does.
-- false: not a number.
local numbers
local function num(s)
  local n = numbers[s]
  if n == nil then
    n = tonumber(s) or false
    numbers[s] = n
  end
  return n
end

-- Writes gathered during a call and made once by commit(): counters, wake-ups, sequences,
-- events.
local pending

-- Every function's first step: bind the call's keys and cap, start with nothing gathered.
local function begin(keys, args)
  if not type then type, tonumber, pcall, unpack, cmsgpack, string, math = globals() end
  K = KEYSETS[keys[1]]
  if not K then
    K = {}
    for _, name in ipairs(NAMES) do
      K[name] = keys[1] .. ':' .. name .. (FAMILIES[name] and ':' or '')
    end
    KEYSETS[keys[1]] = K
  end
  EVENTS_MAX, NULL = args[1], cjson.null
  numbers = {}
  pending = { counts = {}, wake = {}, seq = nil, events = {}, size = 0, group = 0, n = 0 }
end

local function count(queue, state, delta) -- by state, then queue: no string built per job
  local by_queue = pending.counts[state]
  if not by_queue then
    by_queue = {}
    pending.counts[state] = by_queue
  end
  by_queue[queue] = (by_queue[queue] or 0) + delta
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

-- One stream entry holds the events of one script (at most EVENTS_PER_ENTRY), in field `g`:
-- a flat msgpack array of groups, each `type, time, data, n` followed by `job_id, queue,
-- function, attempt` for each of its n events (false stands for none). Events in a row that
-- share type, time and data (the same table) share a group, so a batch of job.started or
-- job.succeeded costs four values per job and no table per event. Its id is "<events written
-- so far, these included>-0" (counted from the clock in us when the count began): an event's
-- number is its place in that count, a reader resumes after a number (XREAD after
-- "<number>-0", then skips what it has seen of the first entry), and MINID ~ keeps about the
-- last EVENTS_MAX.
local EVENTS_PER_ENTRY = 1000
local function entry_id(number) -- digits, never Lua's exponent notation
  return string.format('%d-0', math.max(0, number))
end

local function append_events(blob, n)
  local total = redis.call('HINCRBY', K.seq, 'events', n)
  if total == n then -- a new count (a new store, or one that lost its data): start it at the
    -- clock in microseconds, so that numbers never go back and a reader's position stays valid
    local t = redis.call('TIME')
    total = tonumber(t[1]) * 1000000 + tonumber(t[2]) + n
    redis.call('HSET', K.seq, 'events', string.format('%d', total))
  end
  local added = redis.pcall('XADD', K.events, 'MINID', '~', entry_id(total - EVENTS_MAX),
    entry_id(total), 'g', blob)
  if added.err then -- a stream whose ids ran ahead of the count (written by an older layout)
    local info = redis.call('XINFO', 'STREAM', K.events)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        total = tonumber(string.match(info[i + 1], '^(%d+)')) + n
      end
    end
    redis.call('HSET', K.seq, 'events', string.format('%.0f', total))
    redis.call('XADD', K.events, 'MINID', '~', entry_id(total - EVENTS_MAX), entry_id(total),
      'g', blob)
  end
end

local function flush_events()
  if pending.n > 0 then
    local blob, n = cmsgpack.pack(pending.events), pending.n
    pending.events, pending.size, pending.group, pending.n = {}, 0, 0, 0
    append_events(blob, n)
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
  for state, by_queue in pairs(pending.counts) do
    for queue, delta in pairs(by_queue) do
      if delta ~= 0 then
        redis.call('HINCRBY', K.counts, state .. ':' .. queue, string.format('%d', delta))
      end
    end
  end
  for queue, n in pairs(pending.wake) do
    local tokens = {}
    for i = 1, math.min(n, WAKE_TOKENS) do tokens[i] = '1' end
    if redis.call('LPUSH', K.wake .. queue, unpack(tokens)) > 2 * WAKE_TOKENS then
      redis.call('LTRIM', K.wake .. queue, 0, WAKE_TOKENS - 1)
    end
  end
  if pending.seq then
    redis.call('HSET', K.seq, 'back', string.format('%d', pending.seq.back), 'front',
      string.format('%d', pending.seq.front))
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

-- HMGET of many fields, in chunks as bulk() does; one value per field (false for none).
local function hmget(key, fields)
  if #fields <= 2000 then return redis.call('HMGET', key, unpack(fields)) end
  local out = {}
  for first = 1, #fields, 2000 do
    local part = redis.call('HMGET', key, unpack(fields, first, math.min(first + 1999, #fields)))
    for i = 1, #part do out[#out + 1] = part[i] end
  end
  return out
end

-- One event (see EVENTS_PER_ENTRY for how it is kept); `data` is a table or nil, the rest may
-- be nil where the event has none.
local function emit(kind, now, data, id, queue, fn, attempt)
  local events, size, group = pending.events, pending.size, pending.group
  data = data or false
  if group == 0 or events[group] ~= kind or events[group + 1] ~= now
      or events[group + 2] ~= data then
    events[size + 1], events[size + 2], events[size + 3], events[size + 4] = kind, now, data, 0
    group, size = size + 1, size + 4
    pending.group = group
  end
  events[group + 3] = events[group + 3] + 1
  events[size + 1], events[size + 2] = id or false, queue or false
  events[size + 3], events[size + 4] = fn or false, attempt or 0
  pending.size = size + 4
  pending.n = pending.n + 1
  if pending.n >= EVENTS_PER_ENTRY then flush_events() end
end

local function emit_job(kind, now, job, data)
  emit(kind, now, data, job.id, job.queue, job['function'], job.attempt)
end


-- True when `s` is UTF-8 that Python decodes; plain ASCII (every id Conveyor makes) is told
-- by its largest byte, without the pattern matcher.
local function is_text(s)
  if #s < 256 and math.max(0, string.byte(s, 1, -1)) < 128 then return true end
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
