--[[ resume: serve a paused queue again, and wake its blocked fetchers.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  queue
  Returns  1
  Events   queue.resumed
]]

redis.call('SREM', K.paused, ARGV[2])
emit('queue.resumed', clock(), nil, nil, ARGV[2])
wake(ARGV[2])
commit()
return 1
