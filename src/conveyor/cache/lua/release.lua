--[[ release: delete a lock only if it still holds our token.
  KEYS[1]  the lock
  ARGV[1]  our token
  Returns  1 deleted, 0 the lock is gone or someone else's
  Why a script: GET then DEL must be one step, or a lock that expired and was taken by another
  process could be deleted under it.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
