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

local function take(job)
  move(job, 'active')
  job.attempt = job.attempt + 1
  set(job, { 'state', 'active', 'attempt', job.attempt, 'worker', worker, 'started_at', now,
    'lease_until', now + lease })
  leased[#leased + 1], leased[#leased + 2] = now + lease, job.id
  emit_job('job.started', now, job, { worker = worker })
  local n = #out
  out[n + 1], out[n + 2], out[n + 3] = job.id, job['function'], job.queue
  out[n + 4], out[n + 5], out[n + 6] = job.attempt, job.errors, job.payload
end

local function claim_from(queue)
  local ready = K.ready .. queue
  while wanted > 0 do
    local asked = wanted
    local popped = redis.call('ZPOPMIN', ready, asked)
    for i = 1, #popped, 2 do
      local job, damage = load_checked(popped[i], { 'payload', 'expires_at' })
      if not job then
        bury(popped[i], queue, 'queued', damage, now, worker)
      elseif job.expires_at and job.expires_at ~= '' and tonumber(job.expires_at) <= now then
        finish_job(job, 'expired', now, nil)
      else
        take(job)
        wanted = wanted - 1
      end
    end
    if #popped / 2 < asked then
      quiet(queue)
      return
    end
  end
  if redis.call('ZCARD', ready) > 0 then wake(queue) end
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
