--[[ workers: forget workers whose registration lapsed, and list the live ones.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  Returns  3 values per live worker: id, info (msgspec WorkerInfo), heartbeat time
  Events   none
]]

local now = clock()
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K.workers, '-inf', now)) do
  redis.call('DEL', K.worker .. id)
end
redis.call('ZREMRANGEBYSCORE', K.workers, '-inf', now)
local out = {}
for _, id in ipairs(redis.call('ZRANGE', K.workers, 0, -1)) do
  local v = redis.call('HMGET', K.worker .. id, 'info', 'beat')
  if v[1] then
    out[#out + 1], out[#out + 2], out[#out + 3] = id, v[1], v[2]
  end
end
return out
