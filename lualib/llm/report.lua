-- llm.report: before/after comparisons with confidence intervals.
--
--   local r = llm.report.compare { before = t1, after = t2 }
--   local r = llm.report.compare { variants = { t1, t2, t3 }, baseline = "t1" }
--   r:print()  r:markdown()  r:json()  r:csv()  r:html "report.html"
--
-- A variant is a tracker (llm.metrics.tracker), or a table
--   { name =, tracker = | collector =, quality = samples, wall_s = s | {s...},
--     simulated = count }
-- where quality samples are numbers (1/0 for right/wrong, or scores) or
-- {score =, case =} tables; a list of numbers may carry a parallel
-- `cases` list. spec.quality = {name = samples} adds them by name too.
--
-- For each metric the report gives every variant's value, and for each
-- variant against the baseline an effect (ratio b/a, or difference b - a
-- for rates and quality) with a bootstrap confidence interval (level 0.95,
-- 1000 resamples, a fixed seed: the same data gives the same report).
-- When the variants measured the same cases, the resampling is paired by
-- case (src/bootstrap.h). The verdict per metric: "better" or "worse" when
-- the interval excludes no change, else "no clear difference"; "not
-- enough data" under two values a side. spec.reps, spec.seed, spec.level
-- change the settings.
local cm = require "_llm.metrics"
local metrics = require "llm.metrics"

local M = {}

M.DEFAULT_SEED = 20250101
M.DEFAULT_REPS = 1000
M.DEFAULT_LEVEL = 0.95

local Report = {}
Report.__index = Report
Report.__name = "llm.report"
M.Report = Report

-- ---- variants ------------------------------------------------------------------------

-- Quality samples in any accepted shape -> an arm {v..., cases = {...}|nil}.
local function quality_arm(q)
  if q == nil then return nil end
  if type(q) ~= "table" then error("llm.report: quality must be a list of scores", 4) end
  local arm, cases, keyed = {}, {}, true
  for i, s in ipairs(q) do
    local v, case = s, nil
    if type(s) == "table" then
      v = s.score
      if v == nil then v = s.value end
      if v == nil then v = s.ok end
      case = s.case
    elseif q.cases then
      case = q.cases[i]
    end
    if type(v) == "boolean" then v = v and 1 or 0 end
    if type(v) ~= "number" then
      error(("llm.report: quality sample %d is a %s, not a number"):format(i, type(v)), 4)
    end
    arm[i] = v
    cases[i] = case ~= nil and tostring(case) or nil
    if case == nil then keyed = false end
  end
  if keyed and #arm > 0 then arm.cases = cases end
  return arm
end

local function is_tracker(v)
  return getmetatable(v) == metrics.Tracker
end

local function variant(name, v, extra_quality)
  if is_tracker(v) then v = { tracker = v } end
  if type(v) ~= "table" then
    error(("llm.report.compare: variant %s must be a tracker or a table, got %s"):format(
      tostring(name), type(v)), 3)
  end
  local out = { name = v.name }
  if out.name == nil and v.tracker and v.tracker.name ~= "tracker" then out.name = v.tracker.name end
  out.name = out.name or name
  local wall = v.wall_s
  local wall_samples
  if type(wall) == "table" then
    wall_samples = wall
    local sum = 0
    for _, w in ipairs(wall) do sum = sum + w end
    wall = #wall > 0 and sum / #wall or nil
  end
  out.wall_samples = wall_samples
  local quality = quality_arm(v.quality or extra_quality)
  if v.tracker then
    local t = v.tracker
    out.collector = t.collector
    if quality == nil and #t.quality > 0 then quality = t:quality_samples() end
    out.stats = t:stats()
    if wall then out.stats.wall_s = wall end
    if quality then out.stats = metrics.stats_of(t.collector, {
      name = out.name, wall_s = wall or out.stats.wall_s, simulated = t.simulated, quality = quality }) end
  elseif v.collector then
    out.collector = v.collector
    out.stats = metrics.stats_of(v.collector, { name = out.name, wall_s = wall,
      simulated = v.simulated, quality = quality })
  else
    error(("llm.report.compare: variant %s has no tracker or collector"):format(tostring(name)), 3)
  end
  out.quality = quality
  out.stats.name = out.name
  return out
end

local function collect_variants(spec)
  local list = {}
  local q = spec.quality or {}
  if spec.before ~= nil or spec.after ~= nil then
    if spec.before == nil or spec.after == nil then
      error("llm.report.compare: give both before= and after=", 3)
    end
    list[1] = variant("before", spec.before, q.before)
    list[2] = variant("after", spec.after, q.after)
  else
    local src = spec.variants or spec
    for i, v in ipairs(src) do
      local name = (type(v) == "table" and not is_tracker(v) and v.name)
        or (is_tracker(v) and v.name ~= "tracker" and v.name) or ("variant " .. i)
      list[i] = variant(name, v, q[name])
    end
    if spec.variants and #list == 0 then
      local names = {}
      for k in pairs(spec.variants) do names[#names + 1] = k end
      table.sort(names)
      for i, k in ipairs(names) do list[i] = variant(k, spec.variants[k], q[k]) end
    end
  end
  local seen = {}
  for _, v in ipairs(list) do
    if seen[v.name] then v.name = v.name .. " (" .. (#list) .. ")" end
    seen[v.name] = true
  end
  return list
end

-- ---- metrics ------------------------------------------------------------------------------

-- The rows of a report. column: the collector column (nil: special);
-- stat/q: the statistic; mode: ratio | diff; better: lower | higher.
local DEFS = {
  { key = "quality", label = "quality", unit = "score", mode = "diff", better = "higher", stat = "mean" },
  { key = "latency_p50", label = "latency p50", unit = "ms", column = "latency", stat = "quantile", q = 50,
    mode = "ratio", better = "lower" },
  { key = "latency_p95", label = "latency p95", unit = "ms", column = "latency", stat = "quantile", q = 95,
    mode = "ratio", better = "lower" },
  { key = "ttft_p50", label = "TTFT p50", unit = "ms", column = "ttft", stat = "quantile", q = 50,
    mode = "ratio", better = "lower" },
  { key = "cost", label = "cost", unit = "USD", column = "cost", stat = "total", mode = "ratio", better = "lower" },
  { key = "tokens", label = "tokens", unit = "tokens", column = "tokens", stat = "total", mode = "ratio",
    better = "lower" },
  { key = "error_rate", label = "error rate", unit = "%", column = "error", stat = "mean", mode = "diff",
    better = "lower" },
  { key = "hit_rate", label = "cache hit rate", unit = "%", column = "hit", stat = "mean", mode = "diff",
    better = "higher" },
  -- several wall times (repeated runs) compare by their means
  { key = "wall", label = "wall time", unit = "s", mode = "ratio", better = "lower", stat = "mean" },
}
M.METRICS = DEFS

local function verdict(def, r)
  if r.effect == nil then return "n/a" end
  if r.lo == nil or r.hi == nil then return "not enough data" end
  local none = def.mode == "ratio" and 1 or 0
  local lower_is_better = def.better == "lower"
  if r.hi < none then return lower_is_better and "better" or "worse" end
  if r.lo > none then return lower_is_better and "worse" or "better" end
  return "no clear difference"
end
M.verdict = verdict

-- The arm of a variant for a metric, plus compare options.
local function arm_of(v, def)
  if def.arms or def.totals then return def.arms and def.arms[v.name] end
  if def.key == "quality" then return v.quality end
  if def.key == "wall" then return v.wall_samples end
  return v.collector
end

local function unknown_of(v, def)
  if def.unknown then return def.unknown[v.name] or 0 end
  if def.key == "cost" then return v.stats.cost_unknown or 0 end
  return 0
end

local function value_of(v, def, paired_sum)
  local s = v.stats
  if def.totals then return def.totals[v.name] end
  if def.arms then
    -- an extra metric given as per-call values (e.g. repriced costs)
    local arm = def.arms[v.name]
    if arm == nil or #arm == 0 then return nil end
    local sum = 0
    for _, x in ipairs(arm) do sum = sum + x end
    return paired_sum and sum or sum / #arm
  end
  if def.key == "quality" then return s.quality and s.quality.mean end
  if def.key == "wall" then return s.wall_s end
  if def.key == "latency_p50" then return s.latency.p50 end
  if def.key == "latency_p95" then return s.latency.p95 end
  if def.key == "ttft_p50" then return s.ttft.p50 end
  if def.key == "cost" then
    if s.cost == nil then return nil end
    return paired_sum and s.cost or (s.calls > 0 and s.cost / math.max(s.calls - s.cost_unknown, 1) or nil)
  end
  if def.key == "tokens" then
    return paired_sum and s.tokens.total or (s.calls > 0 and s.tokens.total / s.calls or nil)
  end
  if def.key == "error_rate" then return s.error_rate end
  if def.key == "hit_rate" then return s.hit_rate end
end

local function boot_opts(spec, def, stat, extra)
  local o = { stat = stat, q = def.q, diff = def.mode == "diff", reps = spec.reps or M.DEFAULT_REPS,
              seed = spec.seed or M.DEFAULT_SEED, level = spec.level or M.DEFAULT_LEVEL,
              column = def.column }
  for k, x in pairs(extra or {}) do o[k] = x end
  return o
end

-- Wilson score interval for k successes in n trials. For right/wrong
-- samples the percentile bootstrap collapses to [p, p] when every answer
-- is right (or wrong); Wilson's interval stays honest there ([95.4, 100]
-- for 80 of 80 at 95%).
-- wilson_z takes the normal quantile z itself (llm.route.sweep: 1.959964).
local function wilson_z(k, n, z)
  if n == 0 then return nil, nil end
  local p = k / n
  local den = 1 + z * z / n
  local centre = (p + z * z / (2 * n)) / den
  local half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
  return math.max(0, centre - half), math.min(1, centre + half)
end
M.wilson_z = wilson_z

local function wilson(k, n, level)
  local z = level >= 0.99 and 2.5758 or level >= 0.95 and 1.96 or level >= 0.9 and 1.6449 or 1.2816
  return wilson_z(k, n, z)
end
M.wilson = wilson

-- Computes one metric row over the variants.
local function metric_row(spec, variants, base, def)
  local row = { key = def.key, label = def.label, unit = def.unit, mode = def.mode,
                better = def.better, values = {}, ci = {}, vs = {} }
  local stat = def.stat
  local paired_sum = false
  if stat == "total" then
    -- Totals compare only over the same cases; otherwise per call.
    stat = "mean"
    local a = arm_of(base, def)
    local all_paired = #variants > 1
    for _, v in ipairs(variants) do
      local b = arm_of(v, def)
      if v ~= base then
        if a == nil or b == nil then
          all_paired = false
        else
          local r = cm.compare(a, b, boot_opts(spec, def, "sum", { reps = 1 }))
          if not r.paired then all_paired = false end
        end
      end
    end
    if all_paired then stat, paired_sum = "sum", true end
    row.per = paired_sum and "total" or "per call"
    if def.totals then
      -- given as totals: intervals only where the cases pair up
      row.per = "total"
      if not paired_sum then stat = nil end
    end
  end
  local any = false
  for _, v in ipairs(variants) do
    local value = value_of(v, def, paired_sum)
    row.values[v.name] = value
    if value ~= nil then any = true end
    local arm = stat and arm_of(v, def)
    if def.key == "quality" and def.unit == "%" and v.quality and value ~= nil then
      local k = 0
      for _, x in ipairs(v.quality) do k = k + x end
      local lo, hi = wilson(k, #v.quality, spec.level or M.DEFAULT_LEVEL)
      if lo then row.ci[v.name] = { lo = lo, hi = hi } end
    elseif arm and value ~= nil and def.key ~= "wall" or (def.key == "wall" and arm) then
      local est, lo, hi = cm.ci(arm, boot_opts(spec, def, stat))
      if lo and hi then
        -- centred on the value shown (the engine's estimate comes from the
        -- kept per-call samples, which may be a uniform sample of them)
        local shift = est and value and value - est or 0
        row.ci[v.name] = { lo = lo + shift, hi = hi + shift }
      end
    end
  end
  if not any then return nil end
  local a = arm_of(base, def)
  for _, v in ipairs(variants) do
    if v ~= base then
      local r = { effect = nil }
      local va, vb = row.values[base.name], row.values[v.name]
      if va ~= nil and vb ~= nil then
        if def.mode == "ratio" then
          r.effect = va ~= 0 and vb / va or nil
        else
          r.effect = vb - va
        end
        local b = arm_of(v, def)
        if stat and a ~= nil and b ~= nil and unknown_of(base, def) == 0 and unknown_of(v, def) == 0 then
          local res = cm.compare(a, b, boot_opts(spec, def, stat))
          r.lo, r.hi, r.paired = res.lo, res.hi, res.paired
          if r.lo and r.effect and res.effect then -- centred on the effect shown, as above
            if def.mode == "ratio" and res.effect > 0 then
              local f = r.effect / res.effect
              r.lo, r.hi = r.lo * f, r.hi * f
            elseif def.mode == "diff" then
              local d = r.effect - res.effect
              r.lo, r.hi = r.lo + d, r.hi + d
            end
          end
          if res.subsampled then r.subsampled = true end
          if res.paired then r.cases = res.cases end
        elseif a ~= nil and b ~= nil then
          r.note = "some costs unknown"
        end
        if r.effect ~= nil and r.effect ~= r.effect then r.effect = nil end
      end
      r.verdict = verdict(def, r)
      if def.key == "wall" and r.lo == nil and r.effect ~= nil then r.verdict = "one run: no interval" end
      row.vs[v.name] = r
    end
  end
  return row
end

local function simulated_of(variants)
  local all, some = #variants > 0, false
  for _, v in ipairs(variants) do
    local s = v.stats.simulated
    if s then some = true end
    if s ~= "all" then all = false end
  end
  return all and "all" or some and "some" or nil
end

-- true when every quality sample of every variant is 0 or 1.
local function binary_quality(variants)
  local any = false
  for _, v in ipairs(variants) do
    for _, x in ipairs(v.quality or {}) do
      if x ~= 0 and x ~= 1 then return false end
      any = true
    end
  end
  return any
end

--- llm.report.compare(spec) -> report
function M.compare(spec)
  if type(spec) ~= "table" then
    error("bad argument #1 to 'llm.report.compare' (table expected, got " .. type(spec) .. ")", 2)
  end
  local variants = collect_variants(spec)
  if #variants == 0 then error("llm.report.compare: no variants to compare", 2) end
  local base = variants[1]
  if spec.baseline ~= nil then
    base = nil
    for i, v in ipairs(variants) do
      if v.name == spec.baseline or i == spec.baseline then base = v end
    end
    if not base then error("llm.report.compare: no variant named " .. tostring(spec.baseline), 2) end
  end
  local rows = {}
  -- extra metrics ({key=, label=, unit=, mode=, better=, stat=, arms={name=
  -- values}, unknown={name=n}}, e.g. repriced costs) go right after cost;
  -- one with the key of a built-in row replaces that row in place (an
  -- experiment gives its own per-case hit rate that way)
  local replaced, extras = {}, {}
  for _, extra in ipairs(spec.extra_metrics or {}) do
    local builtin = false
    for _, def in ipairs(DEFS) do if def.key == extra.key then builtin = true end end
    if builtin then replaced[extra.key] = extra else extras[#extras + 1] = extra end
  end
  local defs = {}
  for _, def in ipairs(DEFS) do
    defs[#defs + 1] = replaced[def.key] or def
    if def.key == "cost" then
      for _, extra in ipairs(extras) do defs[#defs + 1] = extra end
    end
  end
  for _, def in ipairs(defs) do
    if def.key == "quality" and binary_quality(variants) then
      -- right/wrong samples: accuracy, shown in percent and points
      def = setmetatable({ label = "accuracy", unit = "%" }, { __index = def })
    end
    local row = metric_row(spec, variants, base, def)
    if row then rows[#rows + 1] = row end
  end
  local paired, cases = nil, nil
  for _, row in ipairs(rows) do
    for _, r in pairs(row.vs) do
      if r.paired then paired, cases = true, r.cases end
    end
  end
  local notes = {}
  for _, v in ipairs(variants) do
    local s = v.stats
    if s.cost_unknown and s.cost_unknown > 0 then
      notes[#notes + 1] = ("%s: %d call%s without a known price (cost shows the priced calls only)")
        :format(v.name, s.cost_unknown, s.cost_unknown == 1 and "" or "s")
    end
    if s.calls == 0 then notes[#notes + 1] = v.name .. ": no calls" end
    if s.calls > 0 and s.ok == 0 then notes[#notes + 1] = v.name .. ": every call failed" end
    if v.collector and v.collector:sampled() then
      notes[#notes + 1] = v.name .. ": intervals use a uniform sample of the calls"
    end
  end
  local self = setmetatable({
    title = spec.title or "comparison",
    -- what the first row counts: "calls", or "cases" for an experiment
    -- whose rows are one per case
    count_label = spec.count_label or "calls",
    baseline = base.name,
    variants = variants,
    metrics = rows,
    simulated = simulated_of(variants),
    paired = paired, cases = cases,
    settings = { reps = spec.reps or M.DEFAULT_REPS, seed = spec.seed or M.DEFAULT_SEED,
                 level = spec.level or M.DEFAULT_LEVEL },
    notes = notes,
  }, Report)
  return self
end

--- llm.report.from_log(opts) -> report | nil, err (see llm.report_log)
function M.from_log(opts)
  return require("llm.report_log").from_log(opts)
end

--- r:metric(key) -> the row for a metric key, or nil
function Report:metric(key)
  for _, row in ipairs(self.metrics) do
    if row.key == key then return row end
  end
end

-- Formats live in their own modules, loaded when used.
function Report:text(opts) return require("llm.report_text").text(self, opts) end
function Report:print(opts) return require("llm.report_text").print(self, opts) end
function Report:markdown() return require("llm.report_text").markdown(self) end
function Report:csv() return require("llm.report_text").csv(self) end
function Report:json() return require("llm.report_text").json(self) end
function Report:data() return require("llm.report_text").data(self) end
function Report:html(path) return require("llm.report_html").write(self, path) end
function Report:html_string() return require("llm.report_html").render(self) end
Report.__tostring = function(r) return r:text { color = false } end

return M
