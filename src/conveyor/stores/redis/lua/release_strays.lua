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

local kept = {}
for i = 3, #ARGV do kept[ARGV[i]] = true end
local released = release_held(ARGV[2], kept)
commit()
return released
