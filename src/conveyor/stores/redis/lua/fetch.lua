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
           both as strings; then 8 values per claim: id, function, queue, attempt, errors,
           payload, crashes, max_crashes
  Events   job.started (data: worker) per job leased; job.expired per queued job found past
           its deadline (it is not leased); job.failed (data: error DamagedRecord, reason) per
           damaged record found (records.lua bury: to the dead-letter queue, not leased)

  Paused queues are skipped. A queue found empty loses its stale wake-up tokens; a queue that
  still has jobs when `count` is reached passes a token on, so another blocked fetcher wakes.
]]

local now = clock()
local worker, lease = ARGV[2], tonumber(ARGV[4])
local out = { string.format('%.6f', now), false }
local wanted = tonumber(ARGV[3])
local until_ms = string.format('%.0f', (now + lease) * 1000) -- the active index scores in ms
local claim = out[1] .. '|' .. worker -- every job's claim: the same text for the batch
local states, attempts, claims, leased = {}, {}, {}, {} -- id, value pairs; score, id pairs
local started = { worker = worker } -- every job.started event's data
local texts = {} -- function names found to be UTF-8

-- Why a popped job cannot be leased (it goes to the dead-letter queue), from what was read.
local function damage(id, state, attempt, blob, payload)
  if not state and not blob then return 'no record for this id' end
  local ok, why = check_state(state, attempt)
  if ok then ok, why = decode(blob) end
  if ok and not is_text(id) then why = 'the id is not UTF-8' end
  if ok and not payload then why = 'the payload is missing' end
  return why or 'the record cannot be leased'
end

-- Lease one popped job; false when its record is damaged or past its deadline (handled here)
-- or no longer queued (a stale index entry, dropped). The record is checked inline, its
-- values taken as multiple returns (no table), and nothing per job is encoded.
local function take(id, queue, state, attempt, blob, payload)
  if state ~= 'queued' and STATES[state] then return false end
  local ok, fn, q, rank, ttl, most, key, expires, errors, crashes, created, since, cancel, n
  if blob then ok, fn, q, rank, ttl, most, key, expires, errors, crashes, created, since,
      cancel, n = pcall(cmsgpack.unpack, blob) end
  local tried = 0 -- no attempt yet; false: not a number
  if attempt then tried = num(attempt) end
  if not (ok and state == 'queued' and tried and type(fn) == 'string'
      and (texts[fn] or is_text(fn)) and type(q) == 'string' and type(rank) == 'number'
      and type(ttl) == 'number' and type(most) == 'number' and (key == false
      or type(key) == 'string') and (expires == false or type(expires) == 'number')
      and type(errors) == 'number' and type(crashes) == 'number'
      and type(created) == 'number' and (since == false or type(since) == 'number')
      and type(cancel) == 'boolean' and type(n) == 'number' and payload and is_text(id)) then
    bury(id, queue, 'queued', damage(id, state, attempt, blob, payload), now, worker)
    return false
  end
  texts[fn] = true
  if expires and expires <= now then
    finish_job(load(id), 'expired', now, nil)
    return false
  end
  tried = tried + 1
  local m = #states
  states[m + 1], states[m + 2] = id, 'active'
  attempts[m + 1], attempts[m + 2] = id, attempt_text(tried)
  claims[m + 1], claims[m + 2] = id, claim
  leased[m + 1], leased[m + 2] = until_ms, id
  emit('job.started', now, started, id, queue, fn, tried)
  m = #out
  out[m + 1], out[m + 2], out[m + 3] = id, fn, queue
  out[m + 4], out[m + 5], out[m + 6] = tried, errors, payload
  out[m + 7], out[m + 8] = crashes, most
  return true
end

local function claim_from(queue)
  local ready = K.ready .. queue
  local taken = 0
  while wanted > 0 do
    local asked = wanted
    -- ZRANGE + ZREMRANGEBYRANK rather than ZPOPMIN: no score turned into text per job
    local popped = redis.call('ZRANGE', ready, 0, asked - 1)
    if #popped > 0 then
      redis.call('ZREMRANGEBYRANK', ready, 0, #popped - 1)
      local s = redis.call('HMGET', K.state, unpack(popped))
      local a = redis.call('HMGET', K.attempt, unpack(popped))
      local r = redis.call('HMGET', K.rec, unpack(popped))
      local p = redis.call('HMGET', K.payload, unpack(popped))
      for i = 1, #popped do
        if take(popped[i], queue, s[i], a[i], r[i], p[i]) then
          taken = taken + 1
          wanted = wanted - 1
        end
      end
    end
    if #popped < asked then
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
bulk('HSET', K.state, states)
bulk('HSET', K.attempt, attempts)
bulk('HSET', K.claim, claims)
bulk('ZADD', K.active, leased)
if #out == 2 then
  local s = redis.call('ZRANGE', K.scheduled, 0, 0, 'WITHSCORES')
  local r = redis.call('ZRANGE', K.retrying, 0, 0, 'WITHSCORES')
  local due = math.min(tonumber(s[2]) or math.huge, tonumber(r[2]) or math.huge)
  if due < math.huge then out[2] = string.format('%.6f', due) end
end
commit()
return out
