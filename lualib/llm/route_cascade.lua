-- Cascades (llm.route.cascade) and the confidence helpers their accept
-- functions use (llm.route.confidence, min_logprob...).
--
-- A cascade answers with a cheap model and escalates to a strong one when
-- the cheap answer is not accepted (FrugalGPT's LLM cascade: Chen, Zaharia
-- and Zou, "FrugalGPT", arXiv:2305.05176).
local errors = require "llm.errors"
local loop = require "_llm.loop"
local stream_util = require "llm.route_stream"

local M = {}

-- llm.route is loaded by the time a cascade is made (it loads this file)
local function route() return require "llm.route" end

-- ---- confidence ----------------------------------------------------------------------

-- Accept functions that need the cheap model's logprobs (weak keys).
local needs_logprobs = setmetatable({}, { __mode = "k" })

--- with_logprobs(fn) -> fn, marked so that a cascade asks its cheap model
-- for logprobs when fn is its accept function.
function M.with_logprobs(fn)
  if type(fn) ~= "function" then error("bad argument #1 to 'with_logprobs' (function expected)", 2) end
  needs_logprobs[fn] = true
  return fn
end

-- The per-token logprob list of a response: resp.logprobs (llm.model sets
-- it when the request asked for logprobs), else from the raw OpenAI body.
local function token_logprobs(resp)
  if type(resp) ~= "table" then return nil end
  local list = resp.logprobs
  if type(list) ~= "table" then
    local ok, raw = pcall(function() return resp.raw end)
    local c = ok and type(raw) == "table" and type(raw.choices) == "table" and raw.choices[1]
    local lp = type(c) == "table" and c.logprobs
    list = type(lp) == "table" and lp.content or nil
  end
  if type(list) ~= "table" or #list == 0 then return nil end
  return list
end

--- logprob_stats(resp) -> {min=, mean=, sum=, first=, n=} over the answer's
-- tokens, or nil when the response carries no logprobs.
function M.logprob_stats(resp)
  local list = token_logprobs(resp)
  if not list then return nil end
  local min, sum, n, first = math.huge, 0, 0, nil
  for _, item in ipairs(list) do
    local v = type(item) == "table" and item.logprob or item
    if type(v) == "number" then
      if first == nil then first = v end
      if v < min then min = v end
      sum = sum + v
      n = n + 1
    end
  end
  if n == 0 then return nil end
  return { min = min, mean = sum / n, sum = sum, first = first, n = n }
end

--- confidence(resp) -> the probability of the answer's least likely token
-- (exp of the smallest logprob), from 0 to 1; nil without logprobs. The
-- simulator puts a model's doubt on the first token of the answer, as a
-- real model's doubt tends to show on the token where answers diverge.
function M.confidence(resp)
  local s = M.logprob_stats(resp)
  return s and math.exp(s.min) or nil
end

local stats_names = { min = true, mean = true, first = true }

--- min_logprob(threshold [, stat]) -> an accept function: true when the
-- answer's logprob statistic (stat: "min" (default), "mean" or "first"
-- token) is at least threshold; false without logprobs. A cascade using
-- it asks its cheap model for logprobs. -math.huge accepts every answer
-- that has logprobs, 0 (or more) accepts none.
function M.min_logprob(threshold, stat)
  if type(threshold) ~= "number" or threshold ~= threshold then
    error("bad argument #1 to 'min_logprob' (number expected)", 2)
  end
  stat = stat or "min"
  if not stats_names[stat] then error("bad argument #2 to 'min_logprob' (\"min\", \"mean\" or \"first\")", 2) end
  return M.with_logprobs(function(resp)
    local s = M.logprob_stats(resp)
    return s ~= nil and s[stat] >= threshold
  end)
end

--- min_confidence(p [, stat]) -> min_logprob(ln p): accepts answers whose
-- token probability (as confidence defines it) is at least p (0..1).
function M.min_confidence(p, stat)
  if type(p) ~= "number" or p < 0 or p > 1 then
    error("bad argument #1 to 'min_confidence' (probability 0..1 expected)", 2)
  end
  return M.min_logprob(p == 0 and -math.huge or math.log(p), stat)
end

-- ---- the cascade ------------------------------------------------------------------------------

local Cascade = {}
Cascade.__index = Cascade
Cascade.__name = "llm.route.cascade"

--- cascade{cheap, strong, accept = fn(resp, req, opts) -> bool [, reason] [, logprobs = true] [, name =]}
-- (cheap and strong may also be given as cheap = , strong =) -> model-like
-- c:chat(req, opts) asks the cheap model (with logprobs = true when accept
-- came from min_logprob/min_confidence/with_logprobs, or spec.logprobs);
-- when the call fails (a runtime error), or accept(resp, req, opts)
-- returns false, or accept raises (counted as checker_errors: a broken
-- checker must not stop a run; the message is kept in c.last_checker_error),
-- it asks the strong model with the original request. opts (the call
-- options: tag, case...) go to both calls and to accept.
-- The response: the model's, with escalated = true|false, routed_to, and
-- when escalated cost = both calls' cost (nil if either is unknown; a
-- failed cheap call costs 0), latency_ms = the whole cascade's time,
-- ttft_ms = the time to the strong model's first token, and cascade =
-- {reason=, cheap_text=, cheap_cost=, strong_cost=, cheap_error=}. When
-- the strong call fails too: nil, its error (err.cheap_response holds the
-- cheap answer when there was one). c:stream answers the same way: an
-- accepted cheap answer arrives as one delta. A cascade has no embed.
function M.new(spec)
  if type(spec) ~= "table" then error("bad argument #1 to 'llm.route.cascade' (table expected)", 2) end
  local R = route()
  local cheap = R.as_model(spec.cheap or spec[1], "llm.route.cascade (cheap)", 2)
  local strong = R.as_model(spec.strong or spec[2], "llm.route.cascade (strong)", 2)
  local accept = spec.accept
  if type(accept) ~= "function" and not (type(accept) == "table" and getmetatable(accept)
     and getmetatable(accept).__call) then
    error("llm.route.cascade: accept = function(resp, req, opts) -> bool is required", 2)
  end
  return setmetatable({
    cheap = cheap, strong = strong, accept = accept,
    logprobs = spec.logprobs == true or needs_logprobs[accept] == true,
    name = spec.name or ("cascade(" .. R.name_of(cheap) .. " -> " .. R.name_of(strong) .. ")"),
    counts = { calls = 0, accepted = 0, escalations = 0, cheap_errors = 0, checker_errors = 0,
               strong_errors = 0, cost = 0, cheap_cost = 0, strong_cost = 0, cost_unknown = 0 },
  }, Cascade)
end

-- The request with logprobs = true (a string becomes a user message).
local function with_logprobs_req(req)
  if type(req) == "string" then return { messages = { { role = "user", content = req } }, logprobs = true } end
  if type(req) ~= "table" then return req end -- the model raises the misuse
  local copy = {}
  for k, v in pairs(req) do copy[k] = v end
  copy.logprobs = true
  return copy
end

local function add_cost(counts, field, v)
  if v == nil then
    counts.cost_unknown = counts.cost_unknown + 1
  else
    counts[field] = counts[field] + v
    counts.cost = counts.cost + v
  end
end

-- Asks the cheap model and the checker: cheap response or nil, accepted,
-- reason, cheap error, t0.
function Cascade:_ask_cheap(req, opts)
  local c = self.counts
  c.calls = c.calls + 1
  local t0 = loop.now()
  local creq = self.logprobs and with_logprobs_req(req) or req
  local resp, err = self.cheap:chat(creq, opts)
  if not resp then
    c.cheap_errors = c.cheap_errors + 1
    return nil, false, "the cheap model failed: " .. tostring(err), err, t0
  end
  add_cost(c, "cheap_cost", resp.cost)
  local ok, v, why = pcall(self.accept, resp, req, opts)
  if not ok then
    c.checker_errors = c.checker_errors + 1
    self.last_checker_error = v
    return resp, false, "the checker raised: " .. tostring(v), nil, t0
  end
  if v then return resp, true, nil, nil, t0 end
  -- an llm.check (or any accept returning false, reason) says why
  return resp, false, type(why) == "string" and ("not accepted: " .. why) or "not accepted", nil, t0
end

function Cascade:_accepted(resp)
  self.counts.accepted = self.counts.accepted + 1
  local R = route()
  return R.annotate(resp, { escalated = false, routed_to = R.name_of(self.cheap),
                            cascade = { cheap_cost = resp.cost } })
end

-- The escalated response: the strong one with the totals of both calls.
function Cascade:_escalated(cresp, cerr, reason, sresp, t0, t1)
  local R = route()
  local ccost = cresp and cresp.cost or (cresp == nil and 0) or nil
  local cost = (ccost ~= nil and sresp.cost ~= nil) and ccost + sresp.cost or nil
  return R.annotate(sresp, {
    escalated = true, routed_to = R.name_of(self.strong), cost = cost,
    latency_ms = (loop.now() - t0) * 1000,
    ttft_ms = sresp.ttft_ms and ((t1 - t0) * 1000 + sresp.ttft_ms) or nil,
    cascade = { reason = reason, cheap_text = cresp and cresp.text, cheap_cost = ccost,
                strong_cost = sresp.cost, cheap_error = cerr },
  })
end

function Cascade:chat(req, opts)
  local cresp, accepted, reason, cerr, t0 = self:_ask_cheap(req, opts)
  if accepted then return self:_accepted(cresp) end
  if cerr and errors.is(cerr, "cancelled") then return nil, cerr end
  local c = self.counts
  c.escalations = c.escalations + 1
  local t1 = loop.now()
  local sresp, serr = self.strong:chat(req, opts)
  if not sresp then
    c.strong_errors = c.strong_errors + 1
    if type(serr) == "table" then serr.cheap_response = cresp end
    return nil, serr
  end
  add_cost(c, "strong_cost", sresp.cost)
  return self:_escalated(cresp, cerr, reason, sresp, t0, t1)
end

function Cascade:stream(req, opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'stream' (table of call options expected, got " .. type(opts) .. ")", 2)
  end
  local inner_opts = {}
  for k, v in pairs(opts or {}) do if k ~= "on_delta" then inner_opts[k] = v end end
  local on_delta = opts and opts.on_delta
  local cresp, accepted, reason, cerr, t0 = self:_ask_cheap(req, inner_opts)
  if accepted then return stream_util.deliver(stream_util.replay(self:_accepted(cresp)), on_delta) end
  if cerr and errors.is(cerr, "cancelled") then
    return stream_util.deliver(stream_util.failed(cerr), on_delta)
  end
  local c = self.counts
  c.escalations = c.escalations + 1
  local t1 = loop.now()
  local me = self
  local s = stream_util.switching {
    open = function(i) if i == 1 then return (me.strong:stream(req, inner_opts)), "strong" end end,
    moves_on = function() return false end,
    finish = function(sresp)
      add_cost(c, "strong_cost", sresp.cost)
      return me:_escalated(cresp, cerr, reason, sresp, t0, t1)
    end,
    failed = function(err)
      c.strong_errors = c.strong_errors + 1
      if type(err) == "table" then err.cheap_response = cresp end
    end,
  }
  return stream_util.deliver(s, on_delta)
end

function Cascade:embed()
  error("llm.route.cascade: a cascade has no embed (there is no answer to check)", 2)
end

--- c:stats() -> {calls, accepted, escalations, escalation_rate, cheap_errors,
-- checker_errors, strong_errors, cost, cheap_cost, strong_cost, cost_unknown}
-- cost: USD of the calls whose cost is known (cost_unknown counts the others).
function Cascade:stats()
  local s = {}
  for k, v in pairs(self.counts) do s[k] = v end
  s.escalation_rate = s.calls > 0 and s.escalations / s.calls or nil
  return s
end

function Cascade:__tostring() return self.name end

return M
