--[[ delete: remove jobs that are not active.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2..] job ids
  Returns  how many were removed
  Events   job.deleted per job removed
]]

local now = clock()
local removed = 0
for i = 2, #ARGV do
  local job = load(ARGV[i])
  if job and job.state ~= 'active' then
    remove(job)
    emit_job('job.deleted', now, job, nil)
    removed = removed + 1
  end
end
commit()
return removed
