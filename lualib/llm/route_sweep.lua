-- llm.route.sweep: run a router (typically a cascade) at several
-- thresholds on the same cases and return the cost/accuracy frontier.
--
--   local sw = llm.route.sweep {
--     cases = cases, thresholds = { -math.huge, -1, -0.3, -0.1, 0 },
--     make = function(th) return llm.route.cascade { mini, big, accept = llm.route.min_logprob(th) } end,
--     prompt = function(case) return case.question end,
--     check = function(case, resp) return resp.text == case.answer end,
--   }
--   sw:print()            -- prints the table, Pareto points marked, the chosen one
--   sw:text()             -- the same table as a string
--   sw.chosen.threshold   -- the cheapest within `tolerance` points of the best accuracy
--
-- Like every report object: :print() prints, the other methods return
-- strings (or data). Accuracies are fractions in the data (0.95) and
-- percentages in the text; the tolerance, a difference of accuracies,
-- is in percentage points (tolerance = 2: within 2 points of the best).
local M = {}

local Sweep = {}
Sweep.__index = Sweep
Sweep.__name = "llm.route.sweep"

-- Wilson score interval for k successes in n trials (95%: z = 1.96):
-- it stays inside [0, 1] and behaves at 0% and 100%, where the normal
-- approximation does not (Wilson 1927; Brown, Cai & DasGupta 2001).
local function wilson(k, n, z)
  return require("llm.report").wilson_z(k, n, z or 1.959964)
end
M.wilson = wilson

local function median(list)
  if #list == 0 then return nil end
  table.sort(list)
  local n = #list
  if n % 2 == 1 then return list[(n + 1) // 2] end
  return (list[n // 2] + list[n // 2 + 1]) / 2
end

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return mt ~= nil and type(mt.__call) == "function"
end

local function default_prompt(case)
  if type(case) == "string" then return case end
  if type(case) == "table" then
    if case.messages then return { messages = case.messages } end
    return case.prompt or case.question
  end
end

-- One threshold over every case.
local function run_point(spec, threshold)
  local m = spec.make(threshold)
  if type(m) ~= "table" or not callable(m.chat) then
    error("llm.route.sweep: make(threshold) must return a model-like (with :chat)", 3)
  end
  local cases = spec.cases
  local out = require("llm.async").map(cases, function(case, i)
    local req = spec.prompt(case)
    if req == nil then error(("llm.route.sweep: prompt(case %d) returned nil"):format(i), 0) end
    local id = type(case) == "table" and case.id or i
    local resp, err = m:chat(req, { case = tostring(id), tag = spec.tag })
    local r = { err = err }
    if resp then
      local ok, v = pcall(spec.check, case, resp)
      r.correct = ok and v and true or false
      r.check_error = not ok and tostring(v) or nil
      r.cost, r.latency, r.escalated = resp.cost, resp.latency_ms, resp.escalated
    else
      r.correct = false
    end
    return r
  end, { concurrency = spec.concurrency or 16, progress = false })
  local p = { threshold = threshold, n = #cases, correct = 0, errors = 0, check_errors = 0,
              cost = 0, cost_unknown = 0, escalated = 0 }
  local lat = {}
  local esc_known = false
  for _, r in ipairs(out) do
    if r.correct then p.correct = p.correct + 1 end
    if r.err then p.errors = p.errors + 1 end
    if r.check_error then p.check_errors = p.check_errors + 1 end
    if not r.err then
      if r.cost == nil then p.cost_unknown = p.cost_unknown + 1 else p.cost = p.cost + r.cost end
      if r.latency then lat[#lat + 1] = r.latency end
    end
    if r.escalated ~= nil then esc_known = true end
    if r.escalated then p.escalated = p.escalated + 1 end
  end
  if p.n > 0 then
    p.accuracy = p.correct / p.n
    p.lo, p.hi = wilson(p.correct, p.n)
    p.cost_per_case = p.cost / p.n
  end
  if p.cost_unknown > 0 and p.cost_unknown == p.n - p.errors then p.cost, p.cost_per_case = nil, nil end
  p.latency_p50 = median(lat)
  local st = type(m.stats) == "function" and m:stats() or nil
  p.router_stats = st
  if type(st) == "table" and type(st.escalation_rate) == "number" then
    p.escalation_rate = st.escalation_rate
  elseif esc_known and p.n > 0 then
    p.escalation_rate = p.escalated / p.n
  end
  return p
end

-- Pareto-optimal: no other point is at least as cheap and at least as
-- accurate, and better in one of the two.
local function mark_frontier(points)
  for _, p in ipairs(points) do
    p.pareto = p.cost ~= nil and p.accuracy ~= nil
    if p.pareto then
      for _, q in ipairs(points) do
        if q ~= p and q.cost ~= nil and q.accuracy ~= nil and q.cost <= p.cost and q.accuracy >= p.accuracy
           and (q.cost < p.cost or q.accuracy > p.accuracy) then
          p.pareto = false
          break
        end
      end
    end
  end
end

--- sweep{cases=, thresholds=, make=, check=, prompt=, concurrency=16,
-- tolerance=2 (percentage points), tag=} -> result
-- make(threshold) -> a model-like (a fresh cascade per threshold, so its
-- stats are its own); prompt(case) -> the request (default: case.messages,
-- case.prompt or case.question); check(case, resp) -> true when right (a
-- failed call or a check that raises counts as wrong). Thresholds run one
-- after the other, the cases of one threshold concurrently.
-- result.points: one per threshold, in the given order: {threshold, n,
-- correct, accuracy, lo, hi (Wilson 95% interval), cost (USD, all cases),
-- cost_per_case, escalation_rate (the router's stats, else from
-- resp.escalated), latency_p50 (ms), errors, check_errors, pareto,
-- router_stats}. result.best: the most accurate point (the cheaper on a
-- tie); result.chosen: the cheapest point whose accuracy is within
-- tolerance percentage points of the best (result.tolerance, in points).
-- With no cases, points have n = 0 and no accuracy, and chosen is nil.
function M.sweep(spec)
  if type(spec) ~= "table" then error("bad argument #1 to 'llm.route.sweep' (table expected)", 2) end
  if type(spec.cases) ~= "table" then error("llm.route.sweep: cases (a list) is required", 2) end
  if type(spec.thresholds) ~= "table" or #spec.thresholds == 0 then
    error("llm.route.sweep: thresholds (a non-empty list) is required", 2)
  end
  if not callable(spec.make) then error("llm.route.sweep: make = function(threshold) -> model is required", 2) end
  if not callable(spec.check) then error("llm.route.sweep: check = function(case, resp) -> bool is required", 2) end
  if spec.prompt ~= nil and not callable(spec.prompt) then error("llm.route.sweep: prompt must be a function", 2) end
  local tol = spec.tolerance or 2
  if type(tol) ~= "number" or tol < 0 or tol > 100 then
    error("llm.route.sweep: tolerance must be a number of percentage points in [0, 100]", 2)
  end
  if tol > 0 and tol < 0.1 then
    -- most likely a fraction from before tolerances were points
    io.stderr:write(("llm.route.sweep: tolerance is in percentage points (2 = within 2 points); "
      .. "%g reads as %g points\n"):format(tol, tol))
  end
  local s = { cases = spec.cases, make = spec.make, check = spec.check,
              prompt = spec.prompt or default_prompt, concurrency = spec.concurrency, tag = spec.tag }
  local points = {}
  for i, th in ipairs(spec.thresholds) do points[i] = run_point(s, th) end
  mark_frontier(points)
  local best
  for _, p in ipairs(points) do
    if p.accuracy and (not best or p.accuracy > best.accuracy
       or (p.accuracy == best.accuracy and (p.cost or math.huge) < (best.cost or math.huge))) then
      best = p
    end
  end
  local chosen
  if best then
    for _, p in ipairs(points) do
      if p.accuracy and p.cost and p.accuracy >= best.accuracy - tol / 100 - 1e-12 then
        if not chosen or p.cost < chosen.cost or (p.cost == chosen.cost and p.accuracy > chosen.accuracy) then
          chosen = p
        end
      end
    end
  end
  for _, p in ipairs(points) do p.chosen = p == chosen end
  return setmetatable({ points = points, best = best, chosen = chosen, tolerance = tol, n = #spec.cases },
    Sweep)
end

local function fmt_threshold(t)
  if t == math.huge then return "+inf" end
  if t == -math.huge then return "-inf" end
  if type(t) == "number" then return ("%g"):format(t) end
  return tostring(t)
end

local function pct(v) return v and ("%.1f%%"):format(100 * v) or "-" end

--- sw:lines() -> the table as a list of lines; sw:text() -> one string;
-- sw:print([file]) writes it (to stdout by default) and returns sw.
function Sweep:lines()
  local out = {}
  out[#out + 1] = ("%-10s %-22s %12s %12s %10s %9s %6s  %s"):format("threshold", "accuracy (95% CI)",
    "cost", "cost/case", "escalated", "p50 ms", "errors", "")
  for _, p in ipairs(self.points) do
    local acc = p.accuracy and ("%s (%s-%s)"):format(pct(p.accuracy), pct(p.lo), pct(p.hi)) or "-"
    local mark = {}
    if p.pareto then mark[#mark + 1] = "pareto" end
    if p.chosen then mark[#mark + 1] = "<- chosen" end
    out[#out + 1] = ("%-10s %-22s %12s %12s %10s %9s %6d  %s"):format(fmt_threshold(p.threshold), acc,
      p.cost and ("$%.5f"):format(p.cost) or "unknown",
      p.cost_per_case and ("$%.6f"):format(p.cost_per_case) or "-",
      pct(p.escalation_rate), p.latency_p50 and ("%.0f"):format(p.latency_p50) or "-",
      p.errors, table.concat(mark, " "))
  end
  if self.chosen then
    local ch, best = self.chosen, self.best
    local dearest
    for _, p in ipairs(self.points) do
      if p.cost and (not dearest or p.cost > dearest.cost) then dearest = p end
    end
    local function share(p) return (p.cost and p.cost > 0) and ("%.0f%%"):format(100 * ch.cost / p.cost) or "-" end
    if ch == best then
      out[#out + 1] = ("chosen: threshold %s, the most accurate point (%s), at %s of the dearest point's cost")
        :format(fmt_threshold(ch.threshold), pct(ch.accuracy), share(dearest))
    else
      out[#out + 1] = ("chosen: threshold %s, accuracy %s, within %.1f points of the best (%s at threshold %s), "
        .. "at %s of its cost and %s of the dearest point's"):format(fmt_threshold(ch.threshold),
        pct(ch.accuracy), self.tolerance, pct(best.accuracy), fmt_threshold(best.threshold),
        share(best), share(dearest))
    end
  elseif self.n == 0 then
    out[#out + 1] = "no cases: nothing to choose"
  else
    out[#out + 1] = "no point with a known cost and accuracy: nothing chosen"
  end
  return out
end

function Sweep:text() return table.concat(self:lines(), "\n") .. "\n" end

function Sweep:print(file)
  (file or io.stdout):write(self:text())
  return self
end

function Sweep:__tostring() return table.concat(self:lines(), "\n") end

return M
