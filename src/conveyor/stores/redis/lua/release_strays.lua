--[[ release_strays: release jobs active under a worker that the worker does not know it holds
  (a fetch whose reply was lost after the claim ran here).

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  worker id
  ARGV[3..] the ids the worker holds (kept)
  Returns  how many jobs were released
  Events   job.requeued (data: reason "released") per job released, back at the front of its
           lane, attempt kept, no crash counted
]]

local worker = ARGV[2]
local kept = {}
for i = 3, #ARGV do kept[ARGV[i]] = true end
local strays = {}
for _, id in ipairs(held_by(worker)) do
  if not kept[id] then strays[#strays + 1] = id end
end
local now = clock()
local released = 0
for _, job in ipairs(active_in_order(strays, { 'n' })) do
  unindex(job)
  make_ready(job, nil, true)
  emit_job('job.requeued', now, job, { reason = 'released' })
  released = released + 1
end
commit()
return released
