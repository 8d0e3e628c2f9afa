--[[ renew: extend the leases of jobs a worker holds.

  KEYS     the base keys (lib.lua)
  ARGV[1]  events cap
  ARGV[2]  lease (s)
  ARGV[3..] 2 values per held job: id, attempt
  Returns  { lost, cancel }: ids not active under that attempt (not renewed), and ids renewed
           whose cancellation was requested
  Events   none

  The lease is the job's `{p}:active` score (records.lua): renewing writes nothing else.
]]

local now = clock()
local until_ms = string.format('%.0f', (now + tonumber(ARGV[2])) * 1000) -- the index's unit
local lost, cancel = {}, {}
local ids = {}
for i = 3, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then return { lost, cancel } end
local states, attempts, blobs = hmget(K.state, ids), hmget(K.attempt, ids), hmget(K.rec, ids)
local leased = {} -- score, id pairs
for k, id in ipairs(ids) do
  if states[k] == 'active' and attempts[k] and num(attempts[k]) == num(ARGV[2 + 2 * k]) then
    local n = #leased
    leased[n + 1], leased[n + 2] = until_ms, id
    local ok, _, cancelled = pcall(function()
      local r = { cmsgpack.unpack(blobs[k]) }
      return true, r[12]
    end)
    if ok and cancelled then cancel[#cancel + 1] = id end
  else
    lost[#lost + 1] = id
  end
end
bulk('ZADD', K.active, leased)
return { lost, cancel }
