--[[ get: jobs by id, read in one step (writes nothing).

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2..] job ids
  Returns  12 values per job that has a record (records.lua views); unknown ids are left out
  Events   none
]]

local ids = {}
for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
return views(ids, {})
