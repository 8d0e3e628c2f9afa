--[[ purge: remove every job of a queue (or of all queues) in the given states; never active
  ones. One atomic step: its cost grows with the number of jobs in those states.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  1 for one queue, 0 for every queue
  ARGV[3]  the queue ('' for every queue)
  ARGV[4..] states, sorted
  Returns  how many jobs were removed
  Events   one queue.purged (data: count, states)
]]

local one, queue = ARGV[2] == '1', ARGV[3]
local removed = 0
local states = {}

local function candidates(state)
  if state == 'queued' then
    local ids, names = {}, { queue }
    if not one then names = redis.call('SMEMBERS', K.queues) end
    for _, name in ipairs(names) do
      for _, id in ipairs(redis.call('ZRANGE', K.ready .. name, 0, -1)) do ids[#ids + 1] = id end
    end
    return ids
  elseif state == 'scheduled' or state == 'retrying' then
    return redis.call('ZRANGE', K[state], 0, -1)
  end
  return redis.call('ZRANGE', K.done .. state, 0, -1)
end

for i = 4, #ARGV do
  local state = ARGV[i]
  states[#states + 1] = state
  if state ~= 'active' then
    for _, id in ipairs(candidates(state)) do
      local job = load(id)
      if job and job.state == state and (not one or job.queue == queue) then
        remove(job)
        removed = removed + 1
      end
    end
  end
end

emit('queue.purged', clock(), { count = removed, states = states }, nil, one and queue or nil)
commit()
return removed
