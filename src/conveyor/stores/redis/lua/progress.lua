--[[ progress: record an active job's progress, fenced like finish.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  job id
  ARGV[3]  attempt
  ARGV[4]  progress (msgspec Progress)
  ARGV[5]  current
  ARGV[6]  total ('' = none)
  ARGV[7]  message
  Returns  1 recorded, 0 refused (not active under that attempt)
  Events   job.progress (data: current, total, message)
]]

local job = load(ARGV[2])
if not job or job.state ~= 'active' or job.attempt ~= tonumber(ARGV[3]) then return 0 end
local total = NULL
if ARGV[6] ~= '' then total = tonumber(ARGV[6]) end
redis.call('HSET', K.progress, job.id, ARGV[4])
emit_job('job.progress', clock(), job,
  { current = tonumber(ARGV[5]), total = total, message = ARGV[7] })
commit()
return 1
