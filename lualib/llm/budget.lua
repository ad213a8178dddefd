-- llm.budget: a spending cap in US dollars over the calls a script makes.
--
--   local b = llm.budget { usd = 0.50 }                     -- every call
--   local b = llm.budget { usd = 0.10, model = "gpt-4o" }   -- one model's calls
--   local b = llm.budget { usd = 1.00, models = { ["gpt-4o"] = 0.20 } }
--                                  -- $1 in all, of which gpt-4o at most $0.20
--   b:status()   -> {usd=, spent=, in_flight=, remaining=, calls=, refused=,
--                    active=, unpriced=, closed=, models={[name]={usd=, spent=,
--                    in_flight=, remaining=}}}
--   b:remaining() -> USD left under the total cap (math.huge without one)
--   b:spent()     -> USD spent so far (real costs of finished calls)
--   b:close()     -> stops enforcing (also `local b <close> = llm.budget{...}`)
--   llm.budget.active() -> the open budgets
--
-- Options: usd (total cap), model (only calls to this model count:
-- its name as given to llm.model, or "provider/name"), models (per-model
-- caps, keyed the same way), name (a new budget replaces the open one of
-- the same name, keeping its spent and in-flight amounts: a way to raise
-- or lower a cap mid-run), completion_tokens (the expected completion
-- length when a request sets no max_tokens; default 1024), unknown =
-- "refuse" (default) | "allow" (calls to models without a price pass and
-- count as 0).
--
-- How it decides: before a call is sent (the budget.reserve stage at
-- priority 90, so the cache's lookup with a lower number answers hits
-- first and they are never refused), the call's cost is estimated: its
-- prompt tokens (llm.tokens.chat when llm.tokens exists, else an
-- approximation: 3 + per message 4 + ceil(bytes of its text / 4)) and its
-- completion (max_tokens / max_completion_tokens if set, else
-- completion_tokens, never above the model's max_output_tokens), priced
-- like llm.pricing.estimate (long-context tiers apply, no cache discount
-- assumed). If spent +
-- in-flight estimates + this estimate would pass a cap that applies, the
-- call returns nil, err with err.kind == "budget" and is never sent;
-- otherwise the estimate is reserved. When the call finishes (a finish
-- stage, budget.settle at priority 20, after prices are set at 10) the reservation is
-- released and the real cost (resp.cost) is added to spent; a response
-- without a known cost counts its estimate, and a failed call with no
-- partial response counts 0. Checking and reserving happen without
-- yielding, so calls in flight at once (llm.map with 64 workers) can pass
-- a cap only by what their real costs exceed their estimates.
--
-- Across processes: redis = "redis://host:6379/0" with a name shares the
-- budget through Redis (reservations by Redis scripts; on_error = "fail"
-- | "local" with processes = N when Redis is unreachable): see
-- llm.budget_redis. b:shared_status() reads the shared totals, b:reset()
-- forgets them. Its reservations are made and settled by the same stages.
local pipeline = require "llm.pipeline"
local errors = require "llm.errors"
local pricing = require "llm.pricing"

local M = {}

M.DEFAULT_COMPLETION_TOKENS = 1024

local Budget = {}
Budget.__index = Budget
Budget.__name = "llm.budget"

local open = {}                                    -- open budgets, oldest first
-- call -> its reservations {{b=, caps=, amount=}, ...} while in flight;
-- weak keys, so a call that never finishes (a stream dropped unclosed)
-- is not kept alive by its reservation (which then stays counted).
local reserved = setmetatable({}, { __mode = "k" })

-- ---- estimating a call -------------------------------------------------------------

local tokens_mod -- llm.tokens when it exists, false when not

local function tokens()
  if tokens_mod == nil then
    tokens_mod = false
    if package.searchpath("llm.tokens", package.path) then
      local ok, t = pcall(require, "llm.tokens")
      if ok and type(t) == "table" then tokens_mod = t end
    end
  end
  return tokens_mod
end

--- The bytes of the strings in v (a message, a content list), four
-- levels deep: the base of the estimates here and in llm.limits.
local function text_bytes(v, depth)
  if type(v) == "string" then return #v end
  if type(v) ~= "table" or depth > 4 then return 0 end
  local n = 0
  for _, x in pairs(v) do n = n + text_bytes(x, depth + 1) end
  return n
end
M.text_bytes = text_bytes

--- The approximate prompt tokens of a message list: 3 for the reply
-- primer, then per message 4 + ceil(bytes of its strings / 4).
function M.approx_chat_tokens(messages)
  local n = 3
  for _, m in ipairs(messages or {}) do
    n = n + 4 + math.ceil(text_bytes(m, 0) / 4)
  end
  return n
end

local function prompt_tokens(call)
  local body, t = call.body or {}, tokens()
  if call.kind == "embed" then
    local n = 0
    for _, text in ipairs(body.input or {}) do
      local c = t and t.count and select(2, pcall(t.count, text, call.model.name))
      n = n + (math.type(c) == "integer" and c or math.ceil(#text / 4))
    end
    return n
  end
  if t and t.chat then
    local ok, c = pcall(t.chat, body.messages, call.model.name)
    if ok and type(c) == "number" then return c end
  end
  return M.approx_chat_tokens(body.messages)
end

local function completion_tokens(call, b_default, entry)
  if call.kind == "embed" then return 0 end
  local body = call.body or {}
  local n = body.max_tokens or body.max_completion_tokens
  if type(n) ~= "number" then n = b_default end
  if entry and entry.max_output_tokens and n > entry.max_output_tokens then
    n = entry.max_output_tokens
  end
  return n
end

-- ---- caps ---------------------------------------------------------------------------

local function matches(key, model)
  return key == model.name or key == (model.provider .. "/" .. model.name)
end

-- The caps of b that apply to this call: {b}, {b.models[k]} or both.
local function caps_for(b, model)
  if b.model and not matches(b.model, model) then return nil end
  local list = {}
  if b.usd then list[#list + 1] = b.total end
  for key, cap in pairs(b.per_model) do
    if matches(key, model) then list[#list + 1] = cap end
  end
  return list
end

local function would_pass(cap, amount)
  -- a tiny tolerance so that summing float prices never refuses the
  -- call that lands exactly on the cap
  return cap.spent + cap.in_flight + amount > cap.usd * (1 + 1e-12)
end

local function refuse(b, cap, model, amount, why)
  b.refused = b.refused + 1
  local where = cap.key and (" for " .. cap.key) or ""
  local msg = why or ("budget%s of $%.6f would be passed: $%.6f spent, $%.6f in flight, "
    .. "this call estimated at $%.6f"):format(where, cap.usd, cap.spent, cap.in_flight, amount)
  return nil, errors.new("budget", msg, {
    budget = b.name, limit = cap.usd, spent = cap.spent, in_flight = cap.in_flight,
    estimate = amount, model = model.name,
  })
end

local function settle(cap, amount, actual)
  cap.n_in_flight = cap.n_in_flight - 1
  -- exact zero when nothing is in flight: no float residue piles up
  cap.in_flight = cap.n_in_flight == 0 and 0 or math.max(0, cap.in_flight - amount)
  cap.spent = cap.spent + actual
end

local function before(call)
  if #open == 0 then return nil end
  local model = call.model
  local applying
  for _, b in ipairs(open) do
    local caps = caps_for(b, model)
    if caps and #caps > 0 then
      applying = applying or {}
      applying[#applying + 1] = { b = b, caps = caps }
    end
  end
  if not applying then return nil end

  local entry = pricing.get(model.name)
  local prompt = entry and prompt_tokens(call)
  local plans = {}
  for i, a in ipairs(applying) do
    local b, est = a.b, 0
    if entry then
      -- each budget estimates the completion with its own default
      est = pricing.cost_with(entry, {
        prompt_tokens = prompt,
        completion_tokens = completion_tokens(call, b.completion_tokens, entry),
      }) or 0
    elseif b.unknown ~= "allow" then
      pricing.warn_unknown(model.name)
      return refuse(b, a.caps[1], model, 0, ("budget cannot price model \"%s\" (no price known): "
        .. "set one with llm.pricing.set, or create the budget with unknown = \"allow\"")
        :format(model.name))
    end
    for _, cap in ipairs(a.caps) do
      -- a shared budget's caps are checked in Redis, below
      if not b.shared and would_pass(cap, est) then return refuse(b, cap, model, est) end
    end
    plans[i] = { b = b, caps = a.caps, amount = est }
  end
  -- every cap allows it: reserve on all of them
  for _, p in ipairs(plans) do
    for _, cap in ipairs(p.caps) do
      cap.in_flight = cap.in_flight + p.amount
      cap.n_in_flight = cap.n_in_flight + 1
    end
    p.b.active = p.b.active + 1
  end
  reserved[call] = plans
  -- shared budgets reserve across processes (this waits for Redis); a
  -- refusal gives back what was reserved here and there
  for i, p in ipairs(plans) do
    if p.b.shared then
      local ok, err = p.b.shared:reserve(p)
      if not ok then
        reserved[call] = nil
        for j, q in ipairs(plans) do
          for _, cap in ipairs(q.caps) do settle(cap, q.amount, 0) end
          q.b.active = q.b.active - 1
          if j < i and q.b.shared then q.b.shared:settle(q, 0) end
        end
        p.b.refused = p.b.refused + 1
        return nil, err
      end
    end
  end
  return nil
end

local function finish(call, resp, _err, partial)
  local plans = reserved[call]
  if not plans then return end
  reserved[call] = nil
  local r = resp or partial
  for _, p in ipairs(plans) do
    local actual, unpriced = 0, false
    if r then
      if type(r.cost) == "number" then
        actual = r.cost
      else
        actual, unpriced = p.amount, true
      end
    end
    for _, cap in ipairs(p.caps) do settle(cap, p.amount, actual) end
    if p.b.shared then p.b.shared:settle(p, actual) end
    local b = p.b
    b.active = b.active - 1
    b.calls = b.calls + 1
    if unpriced then b.unpriced = b.unpriced + 1 end
  end
end

-- The stages (llm.pipeline: budget.reserve, budget.settle), installed with
-- the first budget and kept: with no budget open, the reserve stage
-- returns at once, and the settle stage must stay to settle calls still
-- in flight under a closed budget.
M.reserve_stage = before
M.settle_stage = finish

-- ---- the budget object -------------------------------------------------------------------

local function cap_new(usd, key)
  return { usd = usd, key = key, spent = 0, in_flight = 0, n_in_flight = 0 }
end

local function check_usd(v, what)
  if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
    error(("llm.budget: %s must be a finite number of USD >= 0, got %s"):format(what, tostring(v)), 4)
  end
  return v
end

local OPTS = { usd = true, model = true, models = true, name = true, completion_tokens = true,
  unknown = true, redis = true, on_error = true, processes = true, reservation_ttl = true }

local function new(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'llm.budget' (table expected, e.g. {usd = 0.50})", 2)
  end
  for k in pairs(opts) do
    if not OPTS[k] then error("llm.budget: unknown option '" .. tostring(k) .. "'", 2) end
  end
  if opts.usd == nil and opts.models == nil then
    error("llm.budget: give usd (a cap in US dollars) and/or models = {[name] = usd}", 2)
  end
  local b = setmetatable({
    name = opts.name, model = opts.model,
    usd = opts.usd ~= nil and check_usd(opts.usd, "usd") or nil,
    per_model = {},
    completion_tokens = opts.completion_tokens or M.DEFAULT_COMPLETION_TOKENS,
    unknown = opts.unknown or "refuse",
    calls = 0, refused = 0, active = 0, unpriced = 0, closed = false,
  }, Budget)
  if opts.model ~= nil and type(opts.model) ~= "string" then
    error("llm.budget: model must be a model name", 2)
  end
  if opts.name ~= nil and type(opts.name) ~= "string" then
    error("llm.budget: name must be a string", 2)
  end
  if math.type(b.completion_tokens) ~= "integer" or b.completion_tokens < 0 then
    error("llm.budget: completion_tokens must be an integer >= 0", 2)
  end
  if b.unknown ~= "refuse" and b.unknown ~= "allow" then
    error("llm.budget: unknown must be \"refuse\" or \"allow\"", 2)
  end
  b.total = cap_new(b.usd or math.huge, nil)
  if opts.models ~= nil then
    if type(opts.models) ~= "table" then error("llm.budget: models must be a table {[name] = usd}", 2) end
    for k, v in pairs(opts.models) do
      if type(k) ~= "string" then error("llm.budget: models keys must be model names", 2) end
      b.per_model[k] = cap_new(check_usd(v, "models[\"" .. k .. "\"]"), k)
    end
  end
  if opts.redis ~= nil then
    require("llm.budget_redis").attach(b, opts)
  else
    for _, k in ipairs { "on_error", "processes", "reservation_ttl" } do
      if opts[k] ~= nil then error("llm.budget: " .. k .. " applies to a budget shared through Redis (redis = URL)", 2) end
    end
  end
  -- replacing a named budget: the accounting carries over, the caps change
  if b.name then
    for i, old in ipairs(open) do
      if old.name == b.name then
        b:_take_over(old)
        table.remove(open, i)
        old.closed = true
        break
      end
    end
  end
  open[#open + 1] = b
  pipeline.use("budget")
  return b
end

function Budget:_take_over(old)
  local function carry(dst, src)
    dst.spent, dst.in_flight, dst.n_in_flight = src.spent, src.in_flight, src.n_in_flight
  end
  carry(self.total, old.total)
  for k, cap in pairs(self.per_model) do
    if old.per_model[k] then carry(cap, old.per_model[k]) end
  end
  self.calls, self.refused, self.active, self.unpriced = old.calls, old.refused, old.active, old.unpriced
  -- calls in flight under the old budget settle into this one
  for call, plans in pairs(reserved) do
    for _, p in ipairs(plans) do
      if p.b == old then
        p.b = self
        local caps = {}
        for _, cap in ipairs(p.caps) do
          if cap == old.total then caps[#caps + 1] = self.total
          elseif cap.key and self.per_model[cap.key] then caps[#caps + 1] = self.per_model[cap.key] end
        end
        p.caps = caps
      end
    end
    reserved[call] = plans
  end
end

local function cap_status(cap)
  return {
    usd = cap.usd ~= math.huge and cap.usd or nil,
    spent = cap.spent, in_flight = cap.in_flight,
    remaining = cap.usd == math.huge and math.huge or math.max(0, cap.usd - cap.spent - cap.in_flight),
  }
end

function Budget:status()
  local s = cap_status(self.total)
  s.calls, s.refused, s.active, s.unpriced, s.closed = self.calls, self.refused, self.active,
    self.unpriced, self.closed
  s.name, s.model = self.name, self.model
  s.models = {}
  for k, cap in pairs(self.per_model) do s.models[k] = cap_status(cap) end
  -- shared: the fields above are this process's; these, the last heard totals
  if self.shared then s.shared = self.shared:status() end
  return s
end

--- A shared budget's totals over every process, read from Redis now
-- (waits): {spent=, in_flight=, remaining=, models=, reservations=} | nil, err.
function Budget:shared_status()
  if not self.shared then return nil, errors.new("budget", "this budget is not shared (no redis = URL)") end
  return self.shared:fetch()
end

--- Forgets a shared budget's spending, every process's (waits).
function Budget:reset()
  if not self.shared then error("b:reset() applies to a budget shared through Redis", 2) end
  return self.shared:reset()
end

function Budget:remaining()
  return cap_status(self.total).remaining
end

function Budget:spent()
  return self.total.spent
end

--- Stops enforcing this budget; calls already in flight still settle
-- into its status. Closing twice is harmless.
function Budget:close()
  if self.closed then return end
  self.closed = true
  for i, b in ipairs(open) do
    if b == self then table.remove(open, i) break end
  end
end
Budget.__close = Budget.close

function Budget:__tostring()
  local s = self.total
  local cap = s.usd == math.huge and "no total cap" or ("$%.6f"):format(s.usd)
  return ("budget%s: $%.6f spent, $%.6f in flight, %s%s"):format(
    self.name and (" " .. self.name) or "", s.spent, s.in_flight, cap, self.closed and " (closed)" or "")
end

--- The open budgets, oldest first.
function M.active()
  local out = {}
  for i, b in ipairs(open) do out[i] = b end
  return out
end

M.new = new
M.Budget = Budget

return setmetatable(M, { __call = function(_, opts) return new(opts) end })
