--[[ list: a page of jobs, state by state in listing order, read in one step (writes nothing).

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  queue filter ('' = any; ARGV[3] says whether it is set: 1|0)
  ARGV[4]  function filter ('' = any; ARGV[5]: 1|0)
  ARGV[6]  index of the state to start in (0-based, into the states below)
  ARGV[7]  offset within that state's index (raw position, before filters)
  ARGV[8]  limit (jobs in the page)
  ARGV[9]  budget (index entries examined at most, so filters cannot make a page unbounded)
  ARGV[10..] the states listed, in order
  Returns  { next_index, next_offset, jobs... }: next_index -1 when there is no more; each job
           as 12 values (records.lua views)
  Events   none

  Orders: queued by queue name then fetch order; scheduled and retrying soonest due first;
  active by lease deadline; finished states most recently finished first.
]]

local queue = ARGV[3] == '1' and ARGV[2] or nil
local fn = ARGV[5] == '1' and ARGV[4] or nil
local index, offset = tonumber(ARGV[6]), tonumber(ARGV[7])
local limit, budget = tonumber(ARGV[8]), tonumber(ARGV[9])
local states = {}
for i = 10, #ARGV do states[#states + 1] = ARGV[i] end

-- up to n ids of the queued sequence from `start`, and its length
local function queued_window(start, n)
  local names = { queue }
  if not queue then
    names = redis.call('SMEMBERS', K.queues)
    table.sort(names)
  end
  local ids, total = {}, 0
  for _, name in ipairs(names) do
    local key = K.ready .. name
    local size = redis.call('ZCARD', key)
    local first = start - total
    if #ids < n and first < size then
      if first < 0 then first = 0 end
      for _, id in ipairs(redis.call('ZRANGE', key, first, first + n - #ids - 1)) do
        ids[#ids + 1] = id
      end
    end
    total = total + size
  end
  return ids, total
end

local function window(state, start, n)
  if state == 'queued' then return queued_window(start, n) end
  if state == 'scheduled' or state == 'retrying' or state == 'active' then
    return redis.call('ZRANGE', K[state], start, start + n - 1), redis.call('ZCARD', K[state])
  end
  local key = K.done .. state
  return redis.call('ZREVRANGE', key, start, start + n - 1), redis.call('ZCARD', key)
end

local function matches(blob)
  local ok, _, f, q = pcall(cmsgpack.unpack_limit, blob, 2)
  return ok and (not queue or q == queue) and (not fn or f == fn)
end

local out = { -1, 0 }
local page = {}
local scanned = 0
while index < #states do
  local total = 0
  while #page < limit and scanned < budget do
    local ids
    ids, total = window(states[index + 1], offset, math.min(limit - #page, budget - scanned))
    if #ids == 0 then break end
    local blobs = (queue or fn) and redis.call('HMGET', K.rec, unpack(ids)) or nil
    for k, id in ipairs(ids) do
      offset, scanned = offset + 1, scanned + 1
      if not blobs or matches(blobs[k]) then page[#page + 1] = id end
      if #page >= limit then break end
    end
  end
  if #page >= limit then
    if offset < total or index + 1 < #states then out[1], out[2] = index, offset end
    return views(page, out)
  end
  if scanned >= budget then
    out[1], out[2] = index, offset
    return views(page, out)
  end
  index, offset = index + 1, 0
end
return views(page, out)
