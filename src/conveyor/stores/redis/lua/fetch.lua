--[[ fetch: lease up to `count` jobs from `queues`, in the order given.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  worker id
  ARGV[3]  count
  ARGV[4]  lease (s)
  ARGV[5]  how many due delayed jobs to promote first, at most
  ARGV[6..] queue names
  Returns  { now, next_due, claims... }: the store's clock; when nothing was leased, the
           run_at of the soonest delayed job (false when none, or when something was leased),
           both as strings; then 6 values per claim: id, function, queue, attempt, errors,
           payload
  Events   job.started (data: worker) per job leased; job.expired per queued job found past
           its deadline (it is not leased); job.failed (data: error DamagedRecord, reason) per
           damaged record found (lib.lua bury: to the dead-letter queue, not leased)

  Paused queues are skipped. A queue found empty loses its stale wake-up tokens; a queue that
  still has jobs when `count` is reached passes a token on, so another blocked fetcher wakes.
]]

local now = clock()
local worker, lease = ARGV[2], tonumber(ARGV[4])
local out = { string.format('%.6f', now), false }
local wanted = tonumber(ARGV[3])
local leased = {} -- score, id pairs for one ZADD

local started = { worker = worker } -- every job.started event's data

-- Lease one popped job; false when its record is damaged or past its deadline (handled here).
-- The fields come in one HMGET, checked without building a job table (the hot path).
local function take(id, queue, key)
  local v = redis.pcall('HMGET', key, 'function', 'attempt', 'errors', 'payload', 'expires_at',
    'priority', 'crashes', 'max_crashes', 'ttl', 'state')
  local attempt, errors = tonumber(v[2]), tonumber(v[3])
  if v.err or not (v[1] and attempt and errors and v[4] and tonumber(v[6]) and tonumber(v[7])
      and tonumber(v[8]) and tonumber(v[9]) and v[10] and is_text(v[1]) and is_text(id)) then
    local _, damage = load_checked(id)
    bury(id, queue, 'queued', damage or 'the record cannot be leased', now, worker)
    return false
  end
  if v[5] and v[5] ~= '' and tonumber(v[5]) <= now then
    finish_job(load(id), 'expired', now, nil)
    return false
  end
  attempt = attempt + 1
  redis.call('HSET', key, 'state', 'active', 'attempt', attempt, 'worker', worker,
    'started_at', now, 'lease_until', now + lease)
  local n = #leased
  leased[n + 1], leased[n + 2] = now + lease, id
  emit({ type = 'job.started', time = now, job_id = id, queue = queue, ['function'] = v[1],
    attempt = attempt, data = started })
  n = #out
  out[n + 1], out[n + 2], out[n + 3] = id, v[1], queue
  out[n + 4], out[n + 5], out[n + 6] = attempt, errors, v[4]
  return true
end

local function claim_from(queue)
  local ready = K.ready .. queue
  local taken = 0
  while wanted > 0 do
    local asked = wanted
    local popped = redis.call('ZPOPMIN', ready, asked)
    for i = 1, #popped, 2 do
      if take(popped[i], queue, K.job .. popped[i]) then
        taken = taken + 1
        wanted = wanted - 1
      end
    end
    if #popped / 2 < asked then
      quiet(queue)
      break
    end
  end
  count(queue, 'queued', -taken)
  count(queue, 'active', taken)
  if wanted <= 0 and redis.call('ZCARD', ready) > 0 then wake(queue) end
end

promote_due(now, tonumber(ARGV[5]))
for i = 6, #ARGV do
  if wanted <= 0 then break end
  if redis.call('SISMEMBER', K.paused, ARGV[i]) == 0 then claim_from(ARGV[i]) end
end
bulk('ZADD', K.active, leased)
if #out == 2 then
  local s = redis.call('ZRANGE', K.scheduled, 0, 0, 'WITHSCORES')
  local r = redis.call('ZRANGE', K.retrying, 0, 0, 'WITHSCORES')
  local due = math.min(tonumber(s[2]) or math.huge, tonumber(r[2]) or math.huge)
  if due < math.huge then out[2] = string.format('%.6f', due) end
end
commit()
return out
