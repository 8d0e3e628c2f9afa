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
  the front (they keep the time they first became ready, in any order). memory.py looks at the
  head of each lane only; this finds the same time or an older, truer one.
]]

local FRONT_SCAN = 100

local function oldest(queue)
  local ready, best = K.ready .. queue, nil
  for rank = 0, 3 do
    local low = rank * LANE
    local ids = redis.call('ZRANGEBYSCORE', ready, low, low + MIDDLE - 1, 'LIMIT', 0, FRONT_SCAN)
    ids[#ids + 1] = redis.call('ZRANGEBYSCORE', ready, low + MIDDLE, low + LANE - 1,
      'LIMIT', 0, 1)[1]
    for _, id in ipairs(ids) do
      local at = tonumber(redis.call('HGET', K.job .. id, 'queued_at'))
      if at and (not best or at < best) then best = at end
    end
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
