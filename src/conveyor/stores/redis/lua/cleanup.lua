--[[ cleanup: remove finished records past their ttl, then the oldest dead-letter jobs beyond
  the bound; trim the event stream.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  dead-letter bound (dlq_max)
  ARGV[3]  at most this many removals in one call
  Returns  { removed, more }: more is 1 when the limit stopped it (call again)
  Events   none
]]

local now = clock()
local limit = tonumber(ARGV[3])
local removed = 0

local function drop(id, index)
  local job = load(id)
  if job then
    remove(job)
  else -- damaged or gone: out of the index, and whatever is kept under its id
    redis.call('ZREM', index, id)
    forget(id)
  end
  removed = removed + 1
end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', K.expiry, '-inf', now, 'LIMIT', 0, limit)) do
  drop(id, K.expiry)
end
local dlq = K.done .. 'failed'
local excess = redis.call('ZCARD', dlq) - tonumber(ARGV[2])
local room = limit - removed
if excess > 0 and room > 0 then
  for _, id in ipairs(redis.call('ZRANGE', dlq, 0, math.min(excess, room) - 1)) do
    drop(id, dlq)
  end
end
local written = tonumber(redis.call('HGET', K.seq, 'events')) or 0
local oldest = string.format('%.0f', math.max(0, written - EVENTS_MAX))
redis.call('XTRIM', K.events, 'MINID', '~', oldest)
commit()
local more = 0
if removed >= limit then more = 1 end
return { removed, more }
