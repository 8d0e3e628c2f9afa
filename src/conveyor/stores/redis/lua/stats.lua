--[[ stats: what queue_stats needs, read in one step (writes nothing).

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  Returns  { counts, queues... }: counts is the flat `{p}:counts` hash ("<state>:<queue>",
           n, ...); then 3 values per queue ever enqueued to or paused: name, paused (1|0),
           oldest_queued_at (when its longest-waiting queued job became ready, as a string;
           false when none is queued)
  Events   none

  Looked at per lane: the first job added at the back (the back is FIFO, so it is the oldest
  unless a late promotion carried an earlier run_at) and the first FRONT_SCAN jobs put back at
  the front (they keep the time they first became ready, in any order). The memory store looks
  at the head of each lane only; this finds the same time or an older, truer one.
]]

local FRONT_SCAN = 100

local function oldest(queue)
  local ready, best, ids = K.ready .. queue, nil, {}
  for rank = 0, 3 do
    local low = rank * LANE
    local front = redis.call('ZRANGEBYSCORE', ready, low, low + MIDDLE - 1, 'LIMIT', 0,
      FRONT_SCAN)
    for _, id in ipairs(front) do ids[#ids + 1] = id end
    ids[#ids + 1] = redis.call('ZRANGEBYSCORE', ready, low + MIDDLE, low + LANE - 1,
      'LIMIT', 0, 1)[1]
  end
  if #ids == 0 then return false end
  for _, blob in ipairs(redis.call('HMGET', K.rec, unpack(ids))) do
    local r = decode(blob)
    local at = r and r[11] -- queued_at
    if at and (not best or at < best) then best = at end
  end
  if best then return string.format('%.6f', best) end
  return false
end

local out = { redis.call('HGETALL', K.counts) }
for _, queue in ipairs(redis.call('SUNION', K.queues, K.paused)) do
  local n = #out
  out[n + 1], out[n + 2] = queue, redis.call('SISMEMBER', K.paused, queue)
  out[n + 3] = oldest(queue)
end
return out
