-- llm.metrics: measure calls.
--
--   local t = llm.metrics.tracker("baseline")        -- collects while active
--   t:run(function() ... model calls ... end)         -- or t:start() ... t:stop()
--   local t2 = llm.metrics.tracker("fast", {tag = "fast"})  -- every call tagged "fast"
--   print(t:stats().latency.p95)
--   t:print()                                          -- a short summary; t:text() returns it
--
-- A tracker with no tag collects every call that finishes while it is
-- active (between start and stop, from any task). A tracker with a tag
-- (a string or a list) is active from creation and collects only calls
-- made with that tag (m:chat(req, {tag = "fast"})); start/stop still
-- bound it in time if used.
--
-- t:stats() -> {
--   name, calls, ok, errors, error_rate, partial, hits, hit_rate, retries,
--   latency = {count, p50, p90, p95, p99, min, max, mean, stdev, exact},
--                 -- ms, successful model calls only: cache hits never count
--   ttft = {...}, -- ms, successful model calls with a first-token time
--   lookup = {...}, -- ms, cache hits: the time the cache took to answer
--   tokens = {prompt, completion, cached, total},  -- hits used none
--   tokens_per_s, -- completion tokens per second of wall time
--   cost,         -- USD: the sum of the known costs; nil when none is known
--   cost_unknown, -- how many calls had no known cost (not in `cost`)
--   wall_s,       -- active time (start..stop), else the calls' time span
--   quality = {mean, lo, hi, n} | nil,   -- from t:score(...)
--   simulated,    -- "all" | "some" | nil
-- }
-- Percentiles are exact up to 65,536 calls and within 0.39% past that
-- (src/metrics.h). Costs come from the price hook (llm.pricing) when it
-- is loaded; a call without a price is "unknown", never 0.
local cm = require "_llm.metrics"
local loop = require "_llm.loop"
local pipeline = require "llm.pipeline"
local outcome = require "llm.outcome"

local M = {}

M.hist = cm.hist
M.collector = cm.collector
M.error_bound = cm.error_bound
M.compare_samples = cm.compare
M.ci = cm.ci

local Tracker = {}
Tracker.__index = Tracker
Tracker.__name = "llm.tracker"

local active = {}   -- trackers currently collecting, in creation order

local function add_call(t, call, resp, err, partial)
  local _, flags, latency, ttft, cost, usage, retries = outcome(call, resp, err, partial)
  if not flags then return end -- cancelled: not a measurement of the model
  local p, c, k
  if usage then p, c, k = usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens end
  t.collector:add(flags, latency, ttft, cost, call.started_at, p, c, k, retries, call.case)
  if call.model and call.model.simulated then t.simulated = t.simulated + 1 end
end

local function matches(t, tag)
  local want = t.tag
  if want == nil then return true end
  if tag == nil then return false end
  if type(want) == "table" then return want[tag] == true end
  return want == tag
end

--- The metrics stage (llm.pipeline): each active tracker collects the call.
function M.metrics_stage(call, resp, err, partial)
  for i = 1, #active do
    local t = active[i]
    if matches(t, call.tag) then add_call(t, call, resp, err, partial) end
  end
end

local function activate(t)
  for _, x in ipairs(active) do if x == t then return end end
  active[#active + 1] = t
  pipeline.use("metrics")
end

local function deactivate(t)
  for i, x in ipairs(active) do
    if x == t then table.remove(active, i) return end
  end
end

--- llm.metrics.tracker(name [, opts]) -> tracker
-- opts: tag (string or list of strings), keep (per-call samples kept for
-- confidence intervals; default 1,048,576, a uniform sample past that).
function M.tracker(name, opts)
  if name ~= nil and type(name) ~= "string" then
    error("bad argument #1 to 'llm.metrics.tracker' (string expected, got " .. type(name) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'llm.metrics.tracker' (table expected, got " .. type(opts) .. ")", 2)
  end
  opts = opts or {}
  local tag = opts.tag
  if type(tag) == "table" then
    local set = {}
    for _, v in ipairs(tag) do set[tostring(v)] = true end
    tag = set
  elseif tag ~= nil and type(tag) ~= "string" then
    error("llm.metrics.tracker: tag must be a string or a list of strings", 2)
  end
  local t = setmetatable({
    name = name or "tracker", tag = tag, collector = cm.collector(opts.keep),
    simulated = 0, quality = {}, quality_cases = {}, wall = 0, t_start = nil,
  }, Tracker)
  if tag ~= nil then activate(t) end
  return t
end

function Tracker:start()
  if self.t_start then return self end
  self.t_start = loop.now()
  activate(self)
  return self
end

function Tracker:stop()
  if self.t_start then
    self.wall = self.wall + (loop.now() - self.t_start)
    self.t_start = nil
  end
  deactivate(self)
  return self
end

--- t:run(fn, ...) -> fn's results; collects while fn runs (errors re-raised).
function Tracker:run(fn, ...)
  self:start()
  local r = table.pack(pcall(fn, ...))
  self:stop()
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

--- t:record(call, resp, err [, partial]): adds one call by hand.
function Tracker:record(call, resp, err, partial)
  add_call(self, call, resp, err, partial)
end

--- t:score(value [, case]): adds a quality sample (1/0 for right/wrong,
-- or a score); case pairs it with other variants' samples of that case.
function Tracker:score(value, case)
  if type(value) == "boolean" then value = value and 1 or 0 end
  if type(value) ~= "number" then
    error("bad argument #1 to 'score' (number or boolean expected, got " .. type(value) .. ")", 2)
  end
  local n = #self.quality + 1
  self.quality[n] = value
  self.quality_cases[n] = case ~= nil and tostring(case) or nil
  return self
end

function Tracker:reset()
  self.collector:reset()
  self.simulated, self.quality, self.quality_cases, self.wall = 0, {}, {}, 0
  if self.t_start then self.t_start = loop.now() end
  return self
end

function Tracker:__tostring()
  return ("tracker %s (%d calls)"):format(self.name, self.collector:calls())
end

--- Quality samples as an arm for _llm.metrics.compare / ci.
function Tracker:quality_samples()
  local q = { cases = {} }
  local keyed = true
  for i, v in ipairs(self.quality) do
    q[i] = v
    q.cases[i] = self.quality_cases[i]
    if self.quality_cases[i] == nil then keyed = false end
  end
  if not keyed then q.cases = nil end
  return q
end

local function rate(n, d)
  if d == nil or d == 0 then return nil end
  return n / d
end

--- Turns a collector's totals into the stats table (shared with reports
-- built from the call log). extra: {name=, wall_s=, simulated=count, quality=arm}
function M.stats_of(collector, extra)
  extra = extra or {}
  local t = collector:totals()
  local wall = extra.wall_s
  if (wall == nil or wall == 0) and t.first_start and t.last_end then
    wall = t.last_end - t.first_start
  end
  local tokens = t.tokens
  tokens.total = tokens.prompt + tokens.completion
  local priced = t.calls - t.cost_unknown
  local s = {
    name = extra.name,
    calls = t.calls, ok = t.ok, errors = t.errors, partial = t.partial, hits = t.hits,
    retries = t.retries,
    error_rate = rate(t.errors, t.calls), hit_rate = rate(t.hits, t.calls),
    latency = t.latency, ttft = t.ttft, lookup = t.lookup,
    tokens = tokens,
    wall_s = wall,
    tokens_per_s = wall and wall > 0 and tokens.completion / wall or nil,
    cost = (priced > 0 or t.calls == 0) and t.cost or nil,
    cost_unknown = t.cost_unknown,
  }
  local sim = extra.simulated or 0
  if t.calls > 0 and sim >= t.calls then s.simulated = "all"
  elseif sim > 0 then s.simulated = "some" end
  local q = extra.quality
  if q and #q > 0 then
    local mean, lo, hi = cm.ci(q, { stat = "mean" })
    s.quality = { mean = mean, lo = lo, hi = hi, n = #q }
  end
  return s
end

function Tracker:stats()
  local wall = self.wall + (self.t_start and (loop.now() - self.t_start) or 0)
  return M.stats_of(self.collector, {
    name = self.name, wall_s = wall > 0 and wall or nil, simulated = self.simulated,
    quality = self:quality_samples(),
  })
end

--- t:text() -> its stats as a few lines of text; t:print() prints them
-- (as every report object: print prints, the other methods return strings).
function Tracker:text()
  local T = require "llm.report_text"
  local f = T.fmt_value
  local s = self:stats()
  local out = {}
  out[#out + 1] = ("tracker %s: %d call%s (%d failed, %d cache hit%s)%s"):format(self.name, s.calls,
    s.calls == 1 and "" or "s", s.errors, s.hits, s.hits == 1 and "" or "s",
    s.simulated and (s.simulated == "all" and ", simulated" or ", partly simulated") or "")
  out[#out + 1] = ("  latency p50 %s, p95 %s; TTFT p50 %s"):format(f(s.latency.p50, "ms"), f(s.latency.p95, "ms"),
    f(s.ttft.p50, "ms"))
  local function count(n) return n >= 100 and f(n, "tokens") or ("%d"):format(n) end
  out[#out + 1] = ("  tokens %s in + %s out; cost %s%s"):format(count(s.tokens.prompt),
    count(s.tokens.completion), s.cost and f(s.cost, "USD") or "unknown",
    s.cost_unknown > 0 and (" (+ %d call%s without a price)"):format(s.cost_unknown,
      s.cost_unknown == 1 and "" or "s") or "")
  if s.quality then
    local binary = true
    for _, v in ipairs(self.quality) do if v ~= 0 and v ~= 1 then binary = false end end
    local unit = binary and "%" or nil
    out[#out + 1] = ("  %s %s [%s, %s] (n=%d)"):format(binary and "accuracy" or "quality", f(s.quality.mean, unit),
      f(s.quality.lo, unit), f(s.quality.hi, unit), s.quality.n)
  end
  return table.concat(out, "\n") .. "\n"
end

function Tracker:print() io.stdout:write(self:text()) end

M.Tracker = Tracker
return M
