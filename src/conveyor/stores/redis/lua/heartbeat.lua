--[[ heartbeat: register or refresh a worker until `ttl` seconds from now.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  worker id
  ARGV[3]  info (msgspec WorkerInfo)
  ARGV[4]  ttl (s)
  Returns  the store's clock (the heartbeat time), as a string
  Events   none
]]

local now = clock()
redis.call('ZADD', K.workers, now + tonumber(ARGV[4]), ARGV[2])
redis.call('HSET', K.worker .. ARGV[2], 'info', ARGV[3], 'beat', now)
return string.format('%.6f', now)
