--[[ pause: stop fetch from serving a queue (enqueue still works). queue_stats lists paused
  queues too; one paused and resumed without ever being enqueued to is forgotten again (as in
  the memory store and SQLite).

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  queue
  Returns  1
  Events   queue.paused
]]

redis.call('SADD', K.paused, ARGV[2])
emit('queue.paused', clock(), nil, nil, ARGV[2])
commit()
return 1
