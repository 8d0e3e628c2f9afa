--[[ enqueue: add a batch of jobs atomically.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2..] 11 values per job: id, function, queue, priority rank, payload, delay (s),
           has_key (1|0), key, expires_in (s, '' = none), ttl (s), max_crashes
  Returns  per job, the id of the job that holds it: its own id when written, the existing
           job's when the id exists, the holder's when the unique key is held
  Events   job.enqueued (data: state) per job written
]]

local now = clock()
local held = {}
local queues = {}
local seq = reserve_back((#ARGV - 1) / 11) -- per job: its `n`, and its ready score if queued

local function create(i)
  local id, queue, delay = ARGV[i], ARGV[i + 2], tonumber(ARGV[i + 5])
  local job = { id = id, queue = queue, ['function'] = ARGV[i + 1], attempt = 0 }
  seq = seq + 1
  local fields = { 'id', id, 'function', ARGV[i + 1], 'queue', queue, 'priority', ARGV[i + 3],
    'payload', ARGV[i + 4], 'attempt', 0, 'errors', 0, 'crashes', 0,
    'max_crashes', ARGV[i + 10], 'created_at', now, 'ttl', ARGV[i + 9], 'n', seq }
  if ARGV[i + 6] == '1' then
    fields[#fields + 1], fields[#fields + 2] = 'key', ARGV[i + 7]
    redis.call('HSET', K.keys, ARGV[i + 7], id)
  end
  if ARGV[i + 8] ~= '' then
    fields[#fields + 1], fields[#fields + 2] = 'expires_at', now + tonumber(ARGV[i + 8])
  end
  local state
  if delay > 0 then
    state = 'scheduled'
    set(job, fields, { 'state', state, 'run_at', now + delay })
    redis.call('ZADD', K.scheduled, now + delay, id)
  else
    state = 'queued'
    set(job, fields, { 'state', state, 'queued_at', now })
    redis.call('ZADD', K.ready .. queue, ready_score(tonumber(ARGV[i + 3]), false, seq), id)
  end
  count(queue, state, 1)
  wake(queue)
  queues[queue] = true
  emit_job('job.enqueued', now, job, { state = state })
end

for i = 2, #ARGV, 11 do
  local id = ARGV[i]
  local holder = false
  if redis.call('EXISTS', K.job .. id) == 1 then
    holder = id
  elseif ARGV[i + 6] == '1' then
    holder = redis.call('HGET', K.keys, ARGV[i + 7])
  end
  if not holder then
    create(i)
    holder = id
  end
  held[#held + 1] = holder
end

local names = {}
for queue in pairs(queues) do names[#names + 1] = queue end
if #names > 0 then redis.call('SADD', K.queues, unpack(names)) end
commit()
return held
