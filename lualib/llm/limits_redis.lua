-- Rate limits shared through Redis: llm.limits.set("openai/gpt-4o", { tpm = 30000,
-- redis = "redis://host:6379/0" }) (or a model's limits = {..., redis = URL})
-- paces every process that uses the same account and model against one
-- set of buckets.
--
-- The buckets of llm.limits_bucket (a small cap, continuous refill at the
-- limit: no window edge, no double burst) with their state in one Redis
-- hash per limiter, llmrun:{limit:<provider|base URL|key hash|model>}:bucket
-- (one hash tag: Redis Cluster puts it in one slot). RESERVE is a Redis
-- script (loaded once, then EVALSHA) that refills every bucket from
-- Redis's own clock (TIME: the processes' clocks may differ), and either
-- takes the call's whole reservation from all of them or answers how many
-- milliseconds to wait; the waiting is done here, by one call of this
-- process at a time (the others queue behind it, first come first served).
-- REFUND gives back what a call did not use, sent without waiting from the
-- settle stage. A 429's retry-after pauses the limiter for every process
-- (PAUSE), and a provider's remaining count lowers the shared level
-- (CORRECT). The hash expires an hour after its last use.
--
-- When Redis is unreachable, the policy is explicit (on_error):
--   "fail" (default): the call fails with err.kind "limit", err.unreachable
--       = true and a message naming Redis: processes that cannot see each
--       other could pass the account's limits together;
--   "local": each process goes on with local buckets holding 1/processes
--       of every limit, and says so once on stderr; Redis is tried again
--       for every call, and used as soon as it answers.
-- Never a silent per-process full limit.
local loop = require "_llm.loop"
local errors = require "llm.errors"
local redis = require "llm.redis"
local bucket = require "llm.limits_bucket"

local M = {}

M.TIMEOUT = 2.0

local now, sleep = loop.now, loop.sleep

-- KEYS: the hash. ARGV: n, then n groups (kind, limit per minute, cap, cost).
-- -> {1, 0} taken | {0, milliseconds to wait}
local RESERVE = redis.script [[
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local pause = tonumber(redis.call('HGET', KEYS[1], 'pause') or '0')
if pause > now then return {0, math.ceil((pause - now) * 1000)} end
local n = tonumber(ARGV[1])
local lv, wait = {}, 0
for i = 1, n do
  local b = 1 + (i - 1) * 4
  local kind, limit, cap, cost = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  local level = tonumber(redis.call('HGET', KEYS[1], kind .. ':l') or '') or cap
  local last = tonumber(redis.call('HGET', KEYS[1], kind .. ':t') or '') or now
  if now > last then level = level + (now - last) * limit / 60 end
  if level > cap then level = cap end
  lv[i] = level
  local need = cost < cap and cost or cap
  if level < need then
    local w = (need - level) * 60 / limit
    if w > wait then wait = w end
  end
end
if wait > 0 then return {0, math.ceil(wait * 1000)} end
for i = 1, n do
  local b = 1 + (i - 1) * 4
  redis.call('HSET', KEYS[1], ARGV[b + 1] .. ':l', tostring(lv[i] - tonumber(ARGV[b + 4])),
    ARGV[b + 1] .. ':t', tostring(now))
end
redis.call('EXPIRE', KEYS[1], 3600)
return {1, 0}
]]

-- KEYS: the hash. ARGV: mode ("refund" | "correct"), n, then n groups
-- (kind, limit, cap, amount): refund adds amount (up to the cap), correct
-- lowers the level to amount (the provider's remaining count).
local ADJUST = redis.script [[
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local n = tonumber(ARGV[2])
for i = 1, n do
  local b = 2 + (i - 1) * 4
  local kind, limit, cap, amount = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  local level = tonumber(redis.call('HGET', KEYS[1], kind .. ':l') or '') or cap
  local last = tonumber(redis.call('HGET', KEYS[1], kind .. ':t') or '') or now
  if now > last then level = level + (now - last) * limit / 60 end
  if ARGV[1] == 'refund' then level = level + amount elseif amount < level then level = amount end
  if level > cap then level = cap end
  redis.call('HSET', KEYS[1], kind .. ':l', tostring(level), kind .. ':t', tostring(now))
end
return 1
]]

-- KEYS: the hash. ARGV: seconds. Pauses every process's calls.
local PAUSE = redis.script [[
local t = redis.call('TIME')
local until_ = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'pause') or '0')
if until_ > cur then redis.call('HSET', KEYS[1], 'pause', tostring(until_)) end
return 1
]]
M.RESERVE, M.ADJUST, M.PAUSE = RESERVE, ADJUST, PAUSE

local Shared = {}
Shared.__index = Shared

local function cap_of(lim, limit)
  return math.max(1, limit * (lim.spec.burst or bucket.DEFAULT_BURST))
end

-- The groups of a reservation: the limits in force, in a fixed order.
local ORDER = { "requests", "tokens", "input_tokens", "output_tokens" }

local function groups(self, amounts, args)
  local lim = self.lim
  local n = 0
  for _, kind in ipairs(ORDER) do
    local limit = lim.limits[kind]
    if limit and amounts[kind] then
      n = n + 1
      args[#args + 1] = kind
      args[#args + 1] = limit
      args[#args + 1] = cap_of(lim, limit)
      args[#args + 1] = amounts[kind]
    end
  end
  return n
end

local function warn_local(self, err)
  if self.warned then return end
  self.warned = true
  io.stderr:write(("llmrun: limits for %s: Redis is unreachable (%s); on_error = \"local\": this "
    .. "process goes on alone with every limit divided by %d until it is back\n")
    :format(self.lim.display, tostring(err and err.message or err), self.processes))
end

-- Local buckets with 1/processes of each limit (on_error = "local").
local function local_buckets(self, t)
  local lim = self.lim
  self.offline = self.offline or {}
  for kind, limit in pairs(lim.limits) do
    local share = limit / self.processes
    local b = self.offline[kind]
    if not b then
      self.offline[kind] = bucket.bucket(share, lim.spec.burst, t)
    elseif b.limit ~= share then
      b:set_limit(share, t)
    end
  end
  return self.offline
end

local function reserve_local(self, e, err)
  warn_local(self, err)
  while true do
    local t = now()
    local bs = local_buckets(self, t)
    local w = 0
    for kind, b in pairs(bs) do
      local x = b:wait(e.cost[kind] or 0, t)
      if x > w then w = x end
    end
    if w == 0 then
      for kind, b in pairs(bs) do b:take(e.cost[kind] or 0, t) end
      e.offline = true
      return true
    end
    sleep(w)
  end
end

--- Reserves e.cost on the shared buckets, waiting as Redis says.
-- -> true | nil, err (Redis unreachable under on_error = "fail").
function Shared:reserve(e)
  self.gate:acquire()
  local ok, a, b = pcall(function()
    while true do
      local args = {}
      local n = groups(self, e.cost, args)
      if n == 0 then return true end
      table.insert(args, 1, n)
      local r, err = RESERVE:run(self.cl, { self.k }, args, M.TIMEOUT)
      if type(r) ~= "table" then
        if self.on_error == "local" and not (err and err.kind == "redis") then
          return reserve_local(self, e, err)
        end
        return nil, errors.new("limit", ("the rate limits of %s are shared through Redis at %s, "
          .. "which %s (%s): the call is not sent (on_error = \"fail\"; on_error = \"local\" with "
          .. "processes = N would go on with every limit divided by N)"):format(self.lim.display,
          self.display, err and err.kind == "redis" and "answered with an error" or "is unreachable",
          tostring(err and err.message or err)), { unreachable = not (err and err.kind == "redis"),
          model = self.lim.model })
      end
      if r[1] == 1 then
        e.shared_id = true
        self.lim.waiting_for = nil
        if self.warned then
          self.warned = false
          io.stderr:write(("llmrun: limits for %s: Redis at %s answers again; the shared limits "
            .. "apply\n"):format(self.lim.display, self.display))
        end
        return true
      end
      self.lim.waiting_for = "tokens"
      sleep(math.max(0.001, (tonumber(r[2]) or 1) / 1000))
    end
  end)
  self.gate:release()
  if not ok then error(a, 0) end
  return a, b
end

--- Gives back what a call did not use (never waits).
function Shared:refund(e, back)
  if e.offline then
    local t = now()
    for kind, amount in pairs(back) do
      local bk = self.offline and self.offline[kind]
      if bk then bk:give(amount, t) end
    end
    return
  end
  local args = { "refund" }
  local any = false
  for _, v in pairs(back) do if v > 0 then any = true end end
  if not any then return end
  local n = groups(self, back, args)
  if n == 0 then return end
  table.insert(args, 2, n)
  ADJUST:send(self.cl, { self.k }, args)
end

--- The provider's remaining count for one kind (never waits).
function Shared:correct(kind, remaining)
  local args = { "correct" }
  local n = groups(self, { [kind] = remaining }, args)
  if n == 0 then return end
  table.insert(args, 2, n)
  ADJUST:send(self.cl, { self.k }, args)
end

--- Pauses every process's calls for seconds (never waits).
function Shared:pause(seconds)
  PAUSE:send(self.cl, { self.k }, { seconds })
end

function Shared:status()
  return { url = self.display, on_error = self.on_error, processes = self.processes,
           offline = self.warned or false }
end

--- Makes limiter lim shared as spec says (spec.redis, on_error, processes).
function M.attach(lim, spec)
  local parsed, perr = redis.parse_url(spec.redis)
  if not parsed then error("llm.limits: " .. perr.message, 4) end
  local tag = "limit:" .. lim.key:gsub("[{}]", "_")
  lim.shared = setmetatable({
    lim = lim, cl = redis.client(spec.redis), display = parsed.display,
    on_error = spec.on_error or "fail", processes = spec.processes or 1,
    k = redis.key(tag, "bucket"), gate = require("llm.async").semaphore(1),
  }, Shared)
  lim.buckets = {} -- the state is in Redis now
  return lim
end

return M
