--[[ renew: extend the leases of jobs a worker holds.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  lease (s)
  ARGV[3..] 2 values per held job: id, attempt
  Returns  { lost, cancel }: ids not active under that attempt (not renewed), and ids renewed
           whose cancellation was requested
  Events   none
]]

local now = clock()
local lease_until = now + tonumber(ARGV[2])
local lost, cancel = {}, {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local v = redis.call('HMGET', K.job .. id, 'state', 'attempt', 'cancel')
  if v[1] == 'active' and tonumber(v[2]) == tonumber(ARGV[i + 1]) then
    redis.call('HSET', K.job .. id, 'lease_until', lease_until)
    redis.call('ZADD', K.active, lease_until, id)
    if v[3] == '1' then cancel[#cancel + 1] = id end
  else
    lost[#lost + 1] = id
  end
end
return { lost, cancel }
