--[[ store_if_held: write a computed value and release its lock, only while the lock is ours.
  KEYS[1]  the lock      KEYS[2]  the entry
  ARGV[1]  our token     ARGV[2]  the value     ARGV[3]  TTL in ms ('' for none)
  Returns  1 stored, 0 the lock was taken away (invalidated or expired): nothing written
  Why a script: an invalidation deletes the lock; a computation that started before it must
  not write its now stale result after it.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[3] == '' then
  redis.call('SET', KEYS[2], ARGV[2])
else
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
redis.call('DEL', KEYS[1])
return 1
