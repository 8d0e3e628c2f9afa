--[[ enqueue: add a batch of jobs atomically.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  how many shapes (S): what jobs of one batch share
  ARGV[3..] 7 values per shape: function, queue, priority rank, delay (s), expires_in (s,
           '' = none), ttl (s), max_crashes
  then     4 values per job: id, shape (1..S), key ('' = none), payload
  Returns  per job, the id of the job that holds it: its own id when written, the existing
           job's when the id exists, the holder's when the unique key is held
  Events   job.enqueued (data: state) per job written

  What a job's record shares with the others of its shape is encoded once per shape: its
  record is that, its key and its number put together (records.lua REC order).
]]

local now = clock()
local held = {}
local states, recs, payloads = {}, {}, {} -- id, value pairs: one HSET each for the batch
local ready, scheduled = {}, {} -- queue -> score, id pairs; score, id pairs: one ZADD each
local QUEUED, SCHEDULED = { state = 'queued' }, { state = 'scheduled' } -- shared event data

local shapes, first = {}, 3 + 7 * tonumber(ARGV[2]) -- where the jobs begin
for i = 3, first - 1, 7 do
  local queue, delay, expires = ARGV[i + 1], tonumber(ARGV[i + 3]), ARGV[i + 4]
  local shape = { fn = ARGV[i], queue = queue, rank = tonumber(ARGV[i + 2]), state = 'queued',
    data = QUEUED, lane = ready[queue] or {} }
  ready[queue] = shape.lane
  local queued_at, run_at = now, false
  if delay > 0 then
    shape.state, shape.data, queued_at, run_at = 'scheduled', SCHEDULED, false, now + delay
  end
  shape.run_at = run_at
  if expires ~= '' then expires = now + tonumber(expires) else expires = false end
  -- function queue priority ttl max_crashes | key | expires_at errors crashes created_at
  -- queued_at cancel | n
  shape.head = cmsgpack.pack(shape.fn, queue, shape.rank, tonumber(ARGV[i + 5]),
    tonumber(ARGV[i + 6]))
  shape.middle = cmsgpack.pack(expires, 0, 0, now, queued_at, false)
  shapes[#shapes + 1] = shape
end

local ids = {}
for i = first, #ARGV, 4 do ids[#ids + 1] = ARGV[i] end
local seq = reserve_back(#ids) -- per job: its `n`, and its ready score if queued
local existing = #ids > 0 and hmget(K.state, ids) or {} -- ids already taken, in one call
local made = {} -- ids written by this call (a batch may name one twice)
local NO_KEY = cmsgpack.pack(false)

local function create(id, shape, key, payload)
  seq = seq + 1
  local packed_key = NO_KEY
  if key ~= '' then
    redis.call('HSET', K.keys, key, id)
    packed_key = cmsgpack.pack(key)
  end
  if shape.run_at then
    local n = #scheduled
    scheduled[n + 1], scheduled[n + 2] = shape.run_at, id
  else
    local lane = shape.lane
    local n = #lane
    lane[n + 1], lane[n + 2] = string.format('%d', ready_score(shape.rank, false, seq)), id
  end
  local n = #recs
  states[n + 1], states[n + 2] = id, shape.state
  recs[n + 1], recs[n + 2] = id, shape.head .. packed_key .. shape.middle .. cmsgpack.pack(seq)
  payloads[n + 1], payloads[n + 2] = id, payload
  made[id] = true
  count(shape.queue, shape.state, 1)
  wake(shape.queue)
  emit('job.enqueued', now, shape.data, id, shape.queue, shape.fn, 0)
end

for j = 1, #ids do
  local i = first + (j - 1) * 4
  local id, key = ARGV[i], ARGV[i + 2]
  local holder = false
  if existing[j] or made[id] then
    holder = id
  elseif key ~= '' then
    holder = redis.call('HGET', K.keys, key)
  end
  if not holder then
    create(id, shapes[tonumber(ARGV[i + 1])], key, ARGV[i + 3])
    holder = id
  end
  held[#held + 1] = holder
end

bulk('HSET', K.state, states)
bulk('HSET', K.rec, recs)
bulk('HSET', K.payload, payloads)
local names = {}
for queue, lane in pairs(ready) do
  bulk('ZADD', K.ready .. queue, lane)
  names[#names + 1] = queue
end
bulk('ZADD', K.scheduled, scheduled)
if #states > 0 then redis.call('SADD', K.queues, unpack(names)) end
commit()
return held
