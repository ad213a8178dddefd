-- llm.route: choose which model answers.
--
--   local m, cands = llm.route.cheapest({"gpt-4o", "gpt-4o-mini", "claude-sonnet-4"},
--                                       { max_latency_ms = 2000, prompt_tokens = 3000 })
--   local safe = llm.route.fallback { "gpt-4o", "claude-sonnet-4" }
--   local c = llm.route.cascade { "gpt-4o-mini", "gpt-4o", accept = llm.route.min_logprob(-0.5) }
--   local r = llm.route.by_length { { max_tokens = 2000, model = "gpt-4o-mini" }, { model = "gpt-4o" } }
--   local mine = llm.route.router(function(req) return is_code(req) and coder or writer end)
--   local frontier = llm.route.sweep { cases = ..., thresholds = ..., make = ..., check = ... }
--
-- Routers are model-like: they have :chat, :stream and :embed (a cascade
-- has no embed) with the same arguments and results as llm.model's, and
-- a `name`. Anything model-like can be given where a model is expected
-- (a fallback of cascades, a cascade of routers...), and so can a model
-- name (a string becomes llm.model(name)). A routed response is a copy
-- of the answering model's response with resp.routed_to = that model's
-- name added (and the fields each router documents).
local errors = require "llm.errors"
local tokens = require "llm.tokens"
local pricing = require "llm.pricing"
local stream_util = require "llm.route_stream"

local M = {}

-- ---- model-likes ----------------------------------------------------------------------

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return mt ~= nil and type(mt.__call) == "function"
end

local function is_model_like(v)
  return type(v) == "table" and callable(v.chat)
end

--- as_model(x, what) -> a model-like: a model name becomes llm.model(name).
function M.as_model(x, what, level)
  if type(x) == "string" then return require("llm.model").new(x) end
  if is_model_like(x) then return x end
  error(("%s: a model, a model-like table (with :chat) or a model name expected, got %s")
    :format(what or "llm.route", type(x)), (level or 1) + 1)
end

function M.name_of(m)
  if type(m) == "string" then return m end
  if type(m) == "table" and type(m.name) == "string" then return m.name end
  return tostring(m)
end

--- annotate(resp, fields) -> a copy of resp with fields set (the
-- original may be shared, e.g. by a cache).
function M.annotate(resp, fields)
  local copy = {}
  for k, v in pairs(resp) do copy[k] = v end
  for k, v in pairs(fields) do copy[k] = v end
  return setmetatable(copy, getmetatable(resp))
end
local annotate = M.annotate

-- Errors that must not be retried elsewhere: the caller cancelled.
local function final_error(err)
  return errors.is(err, "cancelled")
end

-- ---- cheapest ------------------------------------------------------------------------------

local DEFAULT_PROMPT, DEFAULT_COMPLETION = 1000, 250

-- Reasoning models spend hidden output tokens before they answer, billed
-- as completion tokens: a cost estimate that left them out would rank
-- gpt-5 or o3 as nearly free. The expected count for the request's effort
-- (or Claude's thinking budget) is the simulator's documented rule
-- (src/sim/sim_reasoning.c, README "The simulator's model"): 32 / 512 /
-- 1,536 / 4,096 / 8,192 tokens for minimal / low / medium / high / xhigh,
-- the model's default effort when none is given, a quarter of Claude's
-- budget_tokens. The simulator bills the same tokens, so an estimate
-- matches a simulated run on average.
local function expected_reasoning(name, effort, request)
  local sim = require "_llm.sim"
  local th = type(request) == "table" and request.thinking
  if type(th) == "table" and th.type == "enabled" and tonumber(th.budget_tokens)
     and require("llm.providers").is_claude(name) then
    return (sim.reasoning(name, nil, math.tointeger(th.budget_tokens) or 0))
  end
  effort = effort or (type(request) == "table" and request.reasoning_effort) or nil
  return (sim.reasoning(name, effort))
end
M.expected_reasoning = expected_reasoning

-- The simulator's latency for a model name (or one with x-sim-* headers):
-- its profile's TTFT, plus prefill beyond 1,000 prompt tokens, plus the
-- reasoning and the completion at its tokens per second; nil when it has
-- no profile.
local function sim_latency(name, headers, prompt, completion)
  local cfg = require("llm.sim").config()
  local profiles = cfg.profiles or {}
  local h = {}
  for k, v in pairs(headers or {}) do h[tostring(k):lower()] = v end
  local p
  local forced = h["x-sim-profile"] or cfg.profile
  if forced then
    p = profiles[forced] or (forced == "zero" and { ttft_ms = 0, tokens_per_s = 0, prefill_ms_per_1k = 0 })
  else
    local n = name:lower():gsub("^.*/", "")
    p = profiles[n]
    if not p then
      local best
      for key in pairs(profiles) do
        if #key > 0 and n:sub(1, #key) == key and (not best or #key > #best) then best = key end
      end
      p = best and profiles[best] or profiles.default
    end
  end
  if not p then return nil end
  local ttft = tonumber(h["x-sim-ttft-ms"]) or cfg.ttft_ms or p.ttft_ms or 0
  local tps = tonumber(h["x-sim-tokens-per-s"]) or cfg.tokens_per_s or p.tokens_per_s or 0
  local prefill = (h["x-sim-ttft-ms"] or cfg.ttft_ms) and 0 or (p.prefill_ms_per_1k or 0)
  local ms = ttft + prefill * math.max(0, prompt - 1000) / 1000
  if tps > 0 then ms = ms + completion / tps * 1000 end
  return ms
end

local function is_simulated(m, name)
  if type(m) == "table" then return m.simulated == true end
  local p = name:match("^([%w_%-]+)/")
  if p then return p == "sim" end
  return require("llm.providers").default_for(name) == "sim"
end

-- Measured latency of a model from opts.latency / opts.trackers.
local function measured_latency(name, opts)
  local stat = opts.latency_stat or "p50"
  local v = opts.latency and opts.latency[name]
  if type(v) == "number" then return v, "given" end
  local t = opts.trackers and opts.trackers[name]
  if t then
    local s = type(t.stats) == "function" and t:stats() or t
    local lat = type(s) == "table" and s.latency
    if type(lat) == "table" and type(lat[stat]) == "number" then
      return lat[stat], "measured " .. stat
    end
  end
  return nil
end

local cheapest_opts = { max_cost = "number", max_latency_ms = "number", min_context = "number",
  prompt_tokens = "number", completion_tokens = "number", trackers = "table", latency = "table",
  latency_stat = "string", allow_unknown = "boolean", request = "table",
  reasoning_effort = "string" }

local function fmt_usd(v) return ("$%.6g"):format(v) end

--- cheapest(models, opts) -> model | nil, candidates
-- models: a list of names or model-likes. opts: max_cost (USD per call),
-- max_latency_ms, min_context (tokens the model must accept),
-- prompt_tokens (default 1000, or counted from opts.request),
-- completion_tokens (default 250), trackers = {[name] = tracker} and
-- latency = {[name] = ms} (measurements: a tracker's latency p50, or
-- opts.latency_stat = "p95"...), allow_unknown (an unknown latency or
-- context window passes its constraint instead of failing it),
-- reasoning_effort (for reasoning models; else opts.request's, else the
-- model's default; opts.request.thinking.budget_tokens for Claude).
-- Latency: the measurement when given, else for a simulated model the
-- simulator's profile estimate, else unknown. The cost is
-- llm.pricing.estimate for the token counts, the completion including a
-- reasoning model's expected reasoning tokens (expected_reasoning above);
-- a model without a price is rejected. candidates: every model, cheapest
-- first, as {model=, name=, cost=, reasoning_tokens=, latency_ms=,
-- latency_source=, context=, ok=, reasons={...}}.
-- Ties in cost go to the lower latency, then to the earlier model.
function M.cheapest(models, opts)
  if type(models) ~= "table" or #models == 0 then
    error("bad argument #1 to 'llm.route.cheapest' (non-empty list of models expected)", 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("bad argument #2 to 'llm.route.cheapest' (table expected)", 2) end
  for k, v in pairs(opts) do
    local want = cheapest_opts[k]
    if not want then error("llm.route.cheapest: unknown option '" .. tostring(k) .. "'", 2) end
    if type(v) ~= want then error(("llm.route.cheapest: option '%s' must be a %s"):format(k, want), 2) end
  end
  local prompt = opts.prompt_tokens
  if not prompt and opts.request then prompt = tokens.request(opts.request) end
  prompt = prompt or DEFAULT_PROMPT
  local completion = opts.completion_tokens or DEFAULT_COMPLETION
  -- a prompt the caller sized (given or counted) must fit the window too
  local sized = (opts.prompt_tokens or opts.request) and prompt or 0
  local need_context = math.max(opts.min_context or 0, sized)
  local cands = {}
  for i, m in ipairs(models) do
    if type(m) ~= "string" and not is_model_like(m) then
      error(("llm.route.cheapest: models[%d] must be a name or a model, got %s"):format(i, type(m)), 2)
    end
    local name = M.name_of(m)
    local c = { model = m, name = name, reasons = {}, index = i }
    local entry = pricing.get(name)
    c.reasoning_tokens = expected_reasoning(name, opts.reasoning_effort, opts.request)
    if entry then
      c.cost = pricing.estimate(name, prompt, completion + c.reasoning_tokens, { quiet = true })
      c.context = entry.max_input_tokens
    end
    if c.cost == nil then
      c.reasons[#c.reasons + 1] = "no price known"
    elseif opts.max_cost and c.cost > opts.max_cost then
      c.reasons[#c.reasons + 1] = ("estimated cost %s > max_cost %s"):format(fmt_usd(c.cost), fmt_usd(opts.max_cost))
    end
    if need_context > 0 then
      if c.context == nil then
        if not opts.allow_unknown then c.reasons[#c.reasons + 1] = "context window unknown" end
      elseif c.context < need_context then
        c.reasons[#c.reasons + 1] = ("context window %d < %d tokens needed"):format(c.context, need_context)
      end
    end
    local lat, src = measured_latency(name, opts)
    if not lat and is_simulated(m, name) then
      lat = sim_latency(name, type(m) == "table" and m.headers, prompt,
                        completion + c.reasoning_tokens)
      src = lat and "simulator profile"
    end
    c.latency_ms, c.latency_source = lat, src or "unknown"
    if opts.max_latency_ms then
      if lat == nil then
        if not opts.allow_unknown then c.reasons[#c.reasons + 1] = "latency unknown" end
      elseif lat > opts.max_latency_ms then
        c.reasons[#c.reasons + 1] = ("latency %.0f ms (%s) > max_latency_ms %.0f"):format(lat, src, opts.max_latency_ms)
      end
    end
    c.ok = #c.reasons == 0
    cands[i] = c
  end
  table.sort(cands, function(a, b)
    if (a.cost == nil) ~= (b.cost == nil) then return a.cost ~= nil end
    if a.cost ~= b.cost then return a.cost < b.cost end
    local la, lb = a.latency_ms or math.huge, b.latency_ms or math.huge
    if la ~= lb then return la < lb end
    return a.index < b.index
  end)
  for _, c in ipairs(cands) do c.index = nil end
  for _, c in ipairs(cands) do
    if c.ok then return c.model, cands end
  end
  return nil, cands
end

-- ---- fallback ----------------------------------------------------------------------------------

local Fallback = {}
Fallback.__index = Fallback
Fallback.__name = "llm.route.fallback"

--- fallback{m1, m2, ... [, should_fallback = fn(err) -> bool]} -> model-like
-- Tries each model in order and answers with the first that succeeds. A
-- runtime failure (nil, err) moves on to the next model, except a
-- cancellation, or when should_fallback(err) says no; misuse (a raised
-- error) is not caught. The response has routed_to (the name of the
-- model that answered), fallbacks (how many failed before it) and
-- fallback_errors ({model=, error=} for each). When all fail: nil and the
-- last error, with err.fallback_errors. A stream falls back only until
-- its first delta: after that its error is the caller's.
function M.fallback(spec)
  if type(spec) ~= "table" or #spec == 0 then
    error("bad argument #1 to 'llm.route.fallback' (list of models expected)", 2)
  end
  if spec.should_fallback ~= nil and not callable(spec.should_fallback) then
    error("llm.route.fallback: should_fallback must be a function", 2)
  end
  local models, names = {}, {}
  for i, m in ipairs(spec) do
    models[i] = M.as_model(m, "llm.route.fallback", 2)
    names[i] = M.name_of(models[i])
  end
  return setmetatable({
    models = models, should_fallback = spec.should_fallback,
    name = spec.name or ("fallback(" .. table.concat(names, ", ") .. ")"),
    counts = { calls = 0, fallbacks = 0, failures = 0 },
  }, Fallback)
end

function Fallback:_moves_on(err)
  if final_error(err) then return false end
  if self.should_fallback then return self.should_fallback(err) and true or false end
  return true
end

function Fallback:_try(method, input, opts)
  self.counts.calls = self.counts.calls + 1
  local errs = {}
  local last
  for i, m in ipairs(self.models) do
    local resp, err = m[method](m, input, opts)
    if resp then
      if i > 1 then self.counts.fallbacks = self.counts.fallbacks + 1 end
      return annotate(resp, { routed_to = M.name_of(m), fallbacks = i - 1, fallback_errors = errs })
    end
    last = err or errors.new("provider", "model returned nothing")
    errs[#errs + 1] = { model = M.name_of(m), error = last }
    if i < #self.models and not self:_moves_on(last) then break end
  end
  self.counts.failures = self.counts.failures + 1
  if type(last) == "table" then last.fallback_errors = errs end
  return nil, last
end

function Fallback:chat(req, opts) return self:_try("chat", req, opts) end
function Fallback:embed(input, opts) return self:_try("embed", input, opts) end

function Fallback:stream(req, opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'stream' (table of call options expected, got " .. type(opts) .. ")", 2)
  end
  local inner_opts = {}
  for k, v in pairs(opts or {}) do if k ~= "on_delta" then inner_opts[k] = v end end
  self.counts.calls = self.counts.calls + 1
  local me = self
  local s = stream_util.switching {
    open = function(i)
      local m = me.models[i]
      if not m then return nil end
      return (m:stream(req, inner_opts)), M.name_of(m)
    end,
    moves_on = function(err) return me:_moves_on(err) end,
    finish = function(resp, i, errs)
      if i > 1 then me.counts.fallbacks = me.counts.fallbacks + 1 end
      return annotate(resp, { routed_to = M.name_of(me.models[i]), fallbacks = i - 1, fallback_errors = errs })
    end,
    failed = function(err, errs)
      me.counts.failures = me.counts.failures + 1
      if type(err) == "table" then err.fallback_errors = errs end
    end,
  }
  return stream_util.deliver(s, opts and opts.on_delta)
end

--- f:stats() -> {calls, fallbacks (calls answered by a later model), failures}
function Fallback:stats()
  return { calls = self.counts.calls, fallbacks = self.counts.fallbacks, failures = self.counts.failures }
end

function Fallback:__tostring() return self.name end

-- ---- routers ----------------------------------------------------------------------------------

local Router = {}
Router.__index = Router
Router.__name = "llm.route.router"

--- router(fn [, name]) -> model-like. fn(input, opts, kind) -> a model
-- (or model name) for this call, where kind is "chat", "stream" or
-- "embed"; returning nil makes the call fail with a "route" error. The
-- response gets routed_to. A custom router is a plain Lua function.
function M.router(fn, name)
  if not callable(fn) then error("bad argument #1 to 'llm.route.router' (function expected)", 2) end
  return setmetatable({ pick = fn, name = name or "router", counts = {} }, Router)
end

function Router:_model(input, opts, kind)
  local m = self.pick(input, opts, kind)
  if m == nil then
    return nil, errors.new("route", ("%s: no model for this %s request"):format(self.name, kind))
  end
  m = M.as_model(m, self.name, 3)
  local n = M.name_of(m)
  self.counts[n] = (self.counts[n] or 0) + 1
  return m, n
end

function Router:chat(req, opts)
  local m, n = self:_model(req, opts, "chat")
  if not m then return nil, n end
  local resp, err = m:chat(req, opts)
  if not resp then return nil, err end
  return annotate(resp, { routed_to = n })
end

function Router:embed(input, opts)
  local m, n = self:_model(input, opts, "embed")
  if not m then return nil, n end
  local resp, err = m:embed(input, opts)
  if not resp then return nil, err end
  return annotate(resp, { routed_to = n })
end

function Router:stream(req, opts)
  local m, n = self:_model(req, opts, "stream")
  if not m then return stream_util.deliver(stream_util.failed(n), opts and opts.on_delta) end
  local inner_opts = {}
  for k, v in pairs(opts or {}) do if k ~= "on_delta" then inner_opts[k] = v end end
  local s = stream_util.switching {
    open = function(i) if i == 1 then return (m:stream(req, inner_opts)), n end end,
    moves_on = function() return false end,
    finish = function(resp) return annotate(resp, { routed_to = n }) end,
  }
  return stream_util.deliver(s, opts and opts.on_delta)
end

--- r:stats() -> {[model name] = calls routed to it}
function Router:stats()
  local out = {}
  for k, v in pairs(self.counts) do out[k] = v end
  return out
end

function Router:__tostring() return self.name end

-- The prompt tokens of a chat request (a string or a request table).
function M.prompt_tokens(req, model)
  local body = require("llm.model").Model.normalize(req, {})
  return (tokens.chat(body.messages, model, { tools = body.tools }))
end

--- by_length{ {max_tokens = N, model = m1}, ..., {model = mN} [, encoding = name] }
-- -> a router: the first rule whose max_tokens is at least the request's
-- prompt tokens (counted with llm.tokens for the first rule's model, or
-- `encoding`) answers; a rule without max_tokens takes the rest and must
-- come last. A longer request with no rule left fails ("route" error).
-- Embeddings count the input texts' tokens.
function M.by_length(rules)
  if type(rules) ~= "table" or #rules == 0 then
    error("bad argument #1 to 'llm.route.by_length' (list of {max_tokens=, model=} expected)", 2)
  end
  local list = {}
  for i, r in ipairs(rules) do
    if type(r) ~= "table" or r.model == nil then
      error(("llm.route.by_length: rule %d needs a model"):format(i), 2)
    end
    if r.max_tokens ~= nil and (type(r.max_tokens) ~= "number" or r.max_tokens < 0) then
      error(("llm.route.by_length: rule %d: max_tokens must be a number >= 0"):format(i), 2)
    end
    if r.max_tokens == nil and i < #rules then
      error(("llm.route.by_length: rule %d has no max_tokens, so the rules after it never apply"):format(i), 2)
    end
    list[i] = { max_tokens = r.max_tokens, model = M.as_model(r.model, "llm.route.by_length", 2) }
  end
  local enc = rules.encoding or M.name_of(list[1].model)
  local names = {}
  for i, r in ipairs(list) do
    names[i] = (r.max_tokens and ("<=" .. r.max_tokens .. ": ") or "") .. M.name_of(r.model)
  end
  return M.router(function(input, _, kind)
    local n = 0
    if kind == "embed" then
      for _, t in ipairs(type(input) == "string" and { input } or input) do n = n + tokens.count(t, enc) end
    else
      n = M.prompt_tokens(input, enc)
    end
    for _, r in ipairs(list) do
      if r.max_tokens == nil or n <= r.max_tokens then return r.model end
    end
    return nil
  end, "by_length(" .. table.concat(names, ", ") .. ")")
end

-- ---- cascades, confidence, sweeps (their own files) -------------------------------------------

local cascade = require "llm.route_cascade"
M.cascade = cascade.new
M.confidence = cascade.confidence
M.logprob_stats = cascade.logprob_stats
M.min_logprob = cascade.min_logprob
M.min_confidence = cascade.min_confidence
M.with_logprobs = cascade.with_logprobs

M.sweep = function(spec) return require("llm.route_sweep").sweep(spec) end

return M
