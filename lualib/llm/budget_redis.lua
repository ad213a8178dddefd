-- Budgets shared through Redis: llm.budget{ usd = 20, name = "team",
-- redis = "redis://host:6379/0" } caps the spending of every process that
-- opens a budget of that name on that Redis, together.
--
-- The reservation model of llm.budget, with its state in Redis: before a
-- call is sent its estimate is reserved by a Redis script that checks
-- every cap that applies (spent + in flight + estimate <= cap, for all
-- processes) and reserves on all of them atomically; when the call ends
-- a second script releases the reservation and adds the real cost to
-- spent. Amounts are integer nano-dollars (no float residue piles up in
-- Redis). A reservation carries an expiry from Redis's clock (TIME), so
-- the estimate of a process that dies mid-call is released after
-- reservation_ttl seconds (default 600) instead of holding the budget
-- forever. Keys: llmrun:{budget:<name>}:caps|res|exp, one hash tag, so
-- the scripts work on Redis Cluster.
--
-- Spending persists in Redis under the budget's name: every run that
-- opens it shares it (a team's budget, not one run's); b:reset() starts it
-- over, and a name with a date in it ("team-2026-12") gives periods.
--
-- When Redis is unreachable, the policy is explicit (on_error):
--   "fail" (default): calls under the budget are refused (err.kind
--       "budget", err.unreachable = true, a message naming Redis), so the
--       cap can never be passed by processes that cannot see each other;
--   "local": each process goes on alone with the cap divided by
--       `processes` (required: how many processes share the budget) and
--       says so once on stderr; what it spends meanwhile is added to the
--       shared total when Redis is back.
-- Never a silent per-process full limit.
local errors = require "llm.errors"
local redis = require "llm.redis"

local M = {}

M.NANO = 1e9
M.DEFAULT_RESERVATION_TTL = 600
M.TIMEOUT = 2.0

-- KEYS: caps hash, reservations hash, expiry zset.
-- ARGV: id, amount, ttl ms, carry ("cap=nano,cap=nano" spent while Redis
-- was unreachable), n, then n pairs (cap key, limit), all amounts in nano-USD.
-- -> {1, total spent, total in flight} | {0, cap, spent, in flight}
local RESERVE = redis.script [[
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, rid in ipairs(dead) do
  local v = redis.call('HGET', KEYS[2], rid)
  if v then
    local amt, caps = string.match(v, '^(%-?%d+)|(.*)$')
    for ck in string.gmatch(caps, '[^,]+') do
      redis.call('HINCRBY', KEYS[1], ck .. ':in_flight', -tonumber(amt))
    end
    redis.call('HDEL', KEYS[2], rid)
  end
  redis.call('ZREM', KEYS[3], rid)
end
for ck, amt in string.gmatch(ARGV[4], '([^,=]+)=(%-?%d+)') do
  redis.call('HINCRBY', KEYS[1], ck .. ':spent', tonumber(amt))
end
local amount = tonumber(ARGV[2])
local n = tonumber(ARGV[5])
local caps = {}
for i = 1, n do
  local ck, limit = ARGV[4 + 2 * i], tonumber(ARGV[5 + 2 * i])
  local spent = tonumber(redis.call('HGET', KEYS[1], ck .. ':spent') or '0')
  local inf = math.max(0, tonumber(redis.call('HGET', KEYS[1], ck .. ':in_flight') or '0'))
  if amount > 0 and spent + inf + amount > limit then
    return {0, ck, spent, inf}
  end
  caps[i] = ck
end
for i = 1, n do redis.call('HINCRBY', KEYS[1], caps[i] .. ':in_flight', amount) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. table.concat(caps, ','))
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
local spent = tonumber(redis.call('HGET', KEYS[1], 'total:spent') or '0')
local inf = tonumber(redis.call('HGET', KEYS[1], 'total:in_flight') or '0')
return {1, spent, inf}
]]

-- KEYS: as RESERVE. ARGV: id, actual nano-USD, n, n cap keys.
local SETTLE = redis.script [[
local v = redis.call('HGET', KEYS[2], ARGV[1])
if v then
  local amt, caps = string.match(v, '^(%-?%d+)|(.*)$')
  for ck in string.gmatch(caps, '[^,]+') do
    redis.call('HINCRBY', KEYS[1], ck .. ':in_flight', -tonumber(amt))
  end
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
for i = 1, tonumber(ARGV[3]) do
  redis.call('HINCRBY', KEYS[1], ARGV[3 + i] .. ':spent', tonumber(ARGV[2]))
end
return 1
]]
M.RESERVE, M.SETTLE = RESERVE, SETTLE

local function nano(usd) return math.floor(usd * M.NANO + 0.5) end
local function usd(n) return (tonumber(n) or 0) / M.NANO end

local Shared = {}
Shared.__index = Shared

local seq = 0

local function cap_key(cap) return cap.key and ("model:" .. cap.key) or "total" end

local function keys(self)
  return { self.k_caps, self.k_res, self.k_exp }
end

-- Settlements whose sends failed become carry: added to spent at the next
-- reservation (a lost reply may count a call twice; never zero times).
local function collect_failed(self)
  local keep = {}
  for _, s in ipairs(self.sends) do
    local st = s.ticket:status()
    if st == "pending" then
      keep[#keep + 1] = s
    elseif st == "error" and s.actual > 0 then
      for _, ck in ipairs(s.caps) do self.carry[ck] = (self.carry[ck] or 0) + s.actual end
    end
  end
  self.sends = keep
end

local function carry_arg(self)
  local parts = {}
  for ck, amt in pairs(self.carry) do parts[#parts + 1] = ck .. "=" .. amt end
  return table.concat(parts, ",")
end

local function warn_local(self, err)
  if self.warned then return end
  self.warned = true
  io.stderr:write(("llmrun: budget %s: Redis is unreachable (%s); on_error = \"local\": this "
    .. "process goes on alone with the cap divided by %d (total $%.6f here) until it is back\n")
    :format(self.b.name, tostring(err and err.message or err), self.processes,
      (self.b.usd or 0) / self.processes))
end

local function unreachable(self, err, plan)
  local b = self.b
  if self.on_error == "local" then
    warn_local(self, err)
    -- this process's own accounting against the divided caps; the plan is
    -- already counted in cap.in_flight
    for _, cap in ipairs(plan.caps) do
      local share = cap.usd / self.processes
      if cap.spent + cap.in_flight > share * (1 + 1e-12) then
        return nil, errors.new("budget", ("budget %s (shared, Redis unreachable): this process's "
          .. "share $%.6f of %s would be passed: $%.6f spent here, $%.6f in flight"):format(
          b.name, share, cap.key and ("the cap for " .. cap.key) or "the total cap", cap.spent,
          cap.in_flight - plan.amount), { budget = b.name, limit = share, spent = cap.spent,
          in_flight = cap.in_flight - plan.amount, estimate = plan.amount, unreachable = true })
      end
    end
    plan.offline = true
    return true
  end
  return nil, errors.new("budget", ("budget %s is shared through Redis at %s, which is unreachable "
    .. "(%s): the call is refused (on_error = \"fail\"; on_error = \"local\" with processes = N "
    .. "would go on with the cap divided by N)"):format(b.name, self.display,
    tostring(err and err.message or err)), { budget = b.name, unreachable = true })
end

--- Reserves plan.amount on every cap of the plan, for all processes.
-- -> true | nil, err (a refusal, or Redis unreachable under "fail").
function Shared:reserve(plan)
  collect_failed(self)
  seq = seq + 1
  local id = self.owner .. ":" .. seq
  local args = { id, nano(plan.amount), math.floor(self.ttl * 1000), carry_arg(self), #plan.caps }
  for _, cap in ipairs(plan.caps) do
    args[#args + 1] = cap_key(cap)
    args[#args + 1] = nano(cap.usd)
  end
  local r, err = RESERVE:run(self.cl, keys(self), args, M.TIMEOUT)
  if type(r) ~= "table" then
    if err and err.kind == "redis" then -- Redis answered with an error: not an outage
      return nil, errors.new("budget", "budget " .. self.b.name .. ": " .. tostring(err.message),
        { budget = self.b.name })
    end
    return unreachable(self, err, plan)
  end
  self.carry = {}
  if r[1] == 0 then
    local ck, spent, inf = r[2], usd(r[3]), usd(r[4])
    if ck == "total" then self.last = { spent = spent, in_flight = inf } end
    local cap = plan.caps[1]
    for _, c in ipairs(plan.caps) do if cap_key(c) == ck then cap = c end end
    return nil, errors.new("budget", ("budget %s (shared through Redis) of $%.6f%s would be passed: "
      .. "$%.6f spent, $%.6f in flight across processes, this call estimated at $%.6f"):format(
      self.b.name, cap.usd, cap.key and (" for " .. cap.key) or "", spent, inf, plan.amount),
      { budget = self.b.name, limit = cap.usd, spent = spent, in_flight = inf, estimate = plan.amount,
        shared = true })
  end
  self.last = { spent = usd(r[2]), in_flight = usd(r[3]) }
  plan.shared_id = id
  return true
end

--- Ends a reservation: releases it and adds actual (USD) to spent, without
-- waiting (a finish hook cannot).
function Shared:settle(plan, actual)
  local caps = {}
  for i, cap in ipairs(plan.caps) do caps[i] = cap_key(cap) end
  local a = nano(actual)
  if plan.offline or not plan.shared_id then
    if a > 0 then
      for _, ck in ipairs(caps) do self.carry[ck] = (self.carry[ck] or 0) + a end
    end
    return
  end
  local args = { plan.shared_id, a, #caps }
  for _, ck in ipairs(caps) do args[#args + 1] = ck end
  local t = SETTLE:send(self.cl, keys(self), args)
  if t then
    self.sends[#self.sends + 1] = { ticket = t, actual = a, caps = caps }
  elseif a > 0 then
    for _, ck in ipairs(caps) do self.carry[ck] = (self.carry[ck] or 0) + a end
  end
end

--- What this process last heard from Redis (no round trip).
function Shared:status()
  return { url = self.display, name = self.b.name, on_error = self.on_error,
           processes = self.processes, spent = self.last and self.last.spent,
           in_flight = self.last and self.last.in_flight }
end

--- Reads the shared totals now: {spent=, in_flight=, remaining=, models=
-- {[key]={spent=, in_flight=}}, reservations=} | nil, err. Waits.
function Shared:fetch()
  local r, err = self.cl:pipeline({ { "HGETALL", self.k_caps }, { "HLEN", self.k_res } }, M.TIMEOUT)
  if not r then return nil, err end
  local out = { spent = 0, in_flight = 0, models = {}, reservations = r[2] }
  local h = r[1]
  for i = 1, #h - 1, 2 do
    local ck, field = h[i]:match("^(.*):([%w_]+)$")
    local v = usd(h[i + 1])
    if ck == "total" then out[field] = v
    elseif ck and ck:sub(1, 6) == "model:" then
      local m = ck:sub(7)
      out.models[m] = out.models[m] or { spent = 0, in_flight = 0 }
      out.models[m][field] = v
    end
  end
  out.in_flight = math.max(0, out.in_flight)
  if self.b.usd then out.remaining = math.max(0, self.b.usd - out.spent - out.in_flight) end
  self.last = { spent = out.spent, in_flight = out.in_flight }
  return out
end

--- Forgets the shared spending (every process's). Waits.
function Shared:reset()
  local r, err = self.cl:call_timeout(M.TIMEOUT, "DEL", self.k_caps, self.k_res, self.k_exp)
  if not r then return nil, err end
  self.carry, self.last = {}, nil
  return true
end

local OPTS = { redis = "string", on_error = "string", processes = "number", reservation_ttl = "number" }
M.OPTS = OPTS

--- Makes budget b (llm.budget's object, caps set) shared as opts say.
function M.attach(b, opts)
  for k, want in pairs(OPTS) do
    if opts[k] ~= nil and type(opts[k]) ~= want then
      error(("llm.budget: %s must be a %s"):format(k, want), 3)
    end
  end
  if not b.name then
    error("llm.budget: a budget shared through Redis needs a name (name = \"team\"): "
      .. "processes share the budget of that name", 3)
  end
  if b.name:find("[{}]") then error("llm.budget: a shared budget's name cannot contain { or }", 3) end
  local on_error = opts.on_error or "fail"
  if on_error ~= "fail" and on_error ~= "local" then
    error("llm.budget: on_error must be \"fail\" or \"local\"", 3)
  end
  local processes = opts.processes
  if on_error == "local" and (math.type(processes) ~= "integer" or processes < 1) then
    error("llm.budget: on_error = \"local\" needs processes = N (an integer >= 1): how many "
      .. "processes share the budget, so each can go on with 1/N of it", 3)
  end
  local parsed, perr = redis.parse_url(opts.redis)
  if not parsed then error("llm.budget: " .. perr.message, 3) end
  local ttl = opts.reservation_ttl or M.DEFAULT_RESERVATION_TTL
  if not (ttl > 0) then error("llm.budget: reservation_ttl must be > 0 seconds", 3) end
  local tag = "budget:" .. b.name
  b.shared = setmetatable({
    b = b, cl = redis.client(opts.redis), display = parsed.display, on_error = on_error,
    processes = processes or 1, ttl = ttl,
    owner = require("_llm.calllog").new_run_id(),
    k_caps = redis.key(tag, "caps"), k_res = redis.key(tag, "res"), k_exp = redis.key(tag, "exp"),
    carry = {}, sends = {},
  }, Shared)
  return b
end

return M
