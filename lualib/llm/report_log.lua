-- Reports from the call log: llm.report.from_log{...} and `llmrun report`.
--
--   llm.report.from_log { runs = {"20261115-..."}, by = "tag", reprice = target }
--     -> report | nil, err
--
-- Each run's calls are grouped (by tag, the default, or by model); every
-- group is a variant. One run: its groups are compared, the one named
-- "baseline" or "before" (else the first) being the baseline. Several
-- runs: each run's groups are variants named "RUN" or "RUN/GROUP", the
-- first run's first group the baseline. Collecting happens in C in one
-- pass over the run's rows (src/store/calllog_query.c).
--
-- reprice: re-costs the logged calls under other prices without calling
-- anything, through require("llm.pricing").reprice(records, target) (see
-- llm.pricing_reprice): records are the logged rows ({model=, provider=,
-- prompt_tokens=, completion_tokens=, cached_tokens=,
-- cache_creation_tokens=, input_tokens=, cache_kind=, status=, cost=,
-- tag=, case=, ...}); target is a model name, "batch",
-- "cache_discount=0.9", a table, or a .json/.lua file holding a table (the
-- words go through pricing.parse_target). It answers a summary {target=,
-- after=, after_unknown=, ...}. Each variant's calls are repriced: the
-- row "cost repriced as TARGET" shows their new total. For runs of up to
-- PER_CALL_MAX calls each call is also repriced on its own, which gives
-- the row its intervals; above that the row has totals only.
local report = require "llm.report"

local M = {}

local function load_target(target)
  if type(target) ~= "string" then return target end
  local f = io.open(target, "r")
  if not f then return target end -- a model name
  local body = f:read("a")
  f:close()
  if target:match("%.json$") then
    local ok, t = pcall(require("cjson").decode, body)
    if not ok then return nil, ("cannot read the price table %s: %s"):format(target, t) end
    return t
  elseif target:match("%.lua$") then
    local chunk, err = load(body, "@" .. target, "t", {})
    if not chunk then return nil, err end
    local ok, t = pcall(chunk)
    if not ok or type(t) ~= "table" then
      return nil, ("the price table %s must return a table (%s)"):format(target, tostring(t))
    end
    return t
  end
  return target
end

-- Why `llmrun report` on an experiment's run is not its cmp:print().
M.PER_CALL_NOTE = "rows are calls, not cases: an experiment's own report has one row per case, "
  .. "so there a latency is a case's end-to-end time (all its calls, cache lookups and its own code) "
  .. "and here each call's; cost and tokens are the same sums over the same calls (a check's calls "
  .. "are their own group here, tagged judge:<variant>, as in the experiment's judge cost row); wall "
  .. "time here runs from a tag's first call to its last; accuracy is only in the experiment's report "
  .. "(the call log holds no checks)"

local PER_CALL_MAX = 20000
M.PER_CALL_MAX = PER_CALL_MAX

local function pricing_module()
  local ok, pricing = pcall(require, "llm.pricing")
  if not ok or type(pricing) ~= "table" or type(pricing.reprice) ~= "function" then
    return nil, "--reprice needs prices (the llm.pricing module), which this build does not have"
  end
  return pricing
end

-- The summary's new total: {after=, after_unknown=} (llm.pricing_reprice),
-- or, from another implementation, a list of costs / records with .cost.
local function totals_of(res, n)
  if type(res) ~= "table" then return nil end
  if type(res.after) == "number" then return res.after, res.after_unknown or 0, res.target end
  local sum, unknown = 0, 0
  for i = 1, n do
    local c = res[i]
    if type(c) == "table" then c = c.cost end
    if type(c) == "number" then sum = sum + c else unknown = unknown + 1 end
  end
  return sum, unknown
end

-- Reprices one variant's rows: total, unknown count, label, and per-call
-- costs with their cases (an arm for intervals) when the run is small.
local function reprice_variant(pricing, rows, target, per_call)
  local res, err = pricing.reprice(rows, target)
  if res == nil then return nil, err end
  local total, unknown, label = totals_of(res, #rows)
  if total == nil then return nil, "llm.pricing.reprice gave no totals" end
  local arm
  if per_call then
    arm = { cases = {} }
    for _, row in ipairs(rows) do
      local one = pricing.reprice({ row }, target)
      local c, u = totals_of(one, 1)
      if c and u == 0 then
        arm[#arm + 1] = c
        arm.cases[#arm] = row.case
      end
    end
    for i = 1, #arm do if arm.cases[i] == nil then arm.cases = nil break end end
  end
  return { total = total, unknown = unknown, label = label, arm = arm }
end

--- from_log(opts) -> report | nil, err
-- opts: runs (list of ids or prefixes; empty: the latest run started in
-- opts.cwd, else the latest of all: rep.chosen = {run=, why=, script=,
-- args=} says which), by ("tag" | "model" | "none"), reprice (target),
-- reader (an open reader), cwd, title, reps, seed, level.
local build

function M.from_log(opts)
  opts = opts or {}
  if opts.reader then return build(opts, opts.reader) end
  local reader, err = require("llm.log").reader(opts.path)
  if not reader then return nil, err.message end
  -- the report owns its collectors: the reader can go now
  local ok, rep, rerr = pcall(build, opts, reader)
  reader:close()
  if not ok then error(rep, 0) end
  return rep, rerr
end

-- No run named: the latest run started in this directory, else the
-- latest of all; says which and why in chosen.
local function default_run(reader, cwd)
  if cwd and reader.latest_in then
    local id = reader:latest_in(cwd)
    if id then return id, ("the latest run in %s"):format(cwd) end
  end
  local id = reader:find_run(nil)
  if id then
    return id, cwd and ("no run was started in %s; the latest run of all"):format(cwd) or "the latest run"
  end
end

build = function(opts, reader)
  local by = opts.by or "tag"
  local wanted = opts.runs or {}
  local chosen
  if #wanted == 0 then
    local id, why = default_run(reader, opts.cwd)
    if not id then return nil, "no runs logged yet" end
    wanted, chosen = { id }, { run = id, why = why }
  end
  local ids = {}
  for i, prefix in ipairs(wanted) do
    local id, why = reader:find_run(prefix ~= "" and prefix or nil)
    if not id then
      if prefix == "" then return nil, "no runs logged yet" end
      if why.status == "ambiguous" then
        return nil, ("run id '%s' is ambiguous: give more of it (llmrun logs --runs lists them)"):format(prefix)
      end
      return nil, ("no run matches '%s' (llmrun logs --runs lists the runs)"):format(prefix)
    end
    ids[i] = id
  end

  local variants, sources = {}, {}
  for _, id in ipairs(ids) do
    local groups = reader:collect(id, by)
    for _, g in ipairs(groups) do
      local name
      if #ids == 1 then
        name = g.key ~= "" and g.key or "(untagged)"
      else
        name = g.key ~= "" and (id .. "/" .. g.key) or id
      end
      variants[#variants + 1] = { name = name, collector = g.collector, simulated = g.simulated }
      sources[#sources + 1] = { run = id, key = g.key, name = name }
    end
  end
  if #variants == 0 then
    return nil, ("run %s has no calls"):format(ids[1])
  end
  local baseline = variants[1].name
  if #ids == 1 then
    for _, v in ipairs(variants) do
      if v.name == "baseline" or v.name == "before" then baseline = v.name break end
    end
  end

  local extra
  if opts.reprice ~= nil then
    local pricing, perr = pricing_module()
    if not pricing then return nil, perr end
    local target, terr = load_target(opts.reprice)
    if target == nil then return nil, terr end
    if type(target) == "string" and type(pricing.parse_target) == "function" then
      target, terr = pricing.parse_target(target)
      if target == nil then return nil, "--reprice: " .. tostring(terr) end
    end
    local target_name = type(opts.reprice) == "string" and opts.reprice or "the given prices"
    local groups, total_calls = {}, 0
    for _, id in ipairs(ids) do
      for _, row in ipairs(reader:calls(id, 0)) do
        local key = (by == "tag" and row.tag) or (by == "model" and row.model) or ""
        local name
        for _, src in ipairs(sources) do
          if src.run == id and src.key == key then name = src.name end
        end
        if name then
          groups[name] = groups[name] or {}
          table.insert(groups[name], row)
          total_calls = total_calls + 1
        end
      end
    end
    local arms, values, unknown, label = {}, {}, {}, nil
    local per_call = total_calls <= PER_CALL_MAX
    for name, rows in pairs(groups) do
      local r, rerr = reprice_variant(pricing, rows, target, per_call)
      if not r then return nil, ("cannot reprice as %s: %s"):format(target_name, tostring(rerr)) end
      arms[name], values[name], unknown[name] = r.arm, r.total, r.unknown
      label = label or r.label
    end
    extra = { { key = "cost_repriced", label = "cost repriced as " .. (label or target_name), unit = "USD",
                mode = "ratio", better = "lower", stat = "total",
                arms = per_call and arms or nil, totals = values, unknown = unknown } }
  end

  local title = opts.title or ("run " .. table.concat(ids, ", "))
  local rep = report.compare {
    variants = variants, baseline = baseline, title = title, extra_metrics = extra,
    reps = opts.reps, seed = opts.seed, level = opts.level,
  }
  -- calls with case ids come from an experiment (or code like it): say
  -- where this report's figures differ from the experiment's own
  local has_cases = false
  for _, id in ipairs(ids) do
    for _, row in ipairs(reader:calls(id, 50)) do has_cases = has_cases or row.case ~= nil end
  end
  if has_cases then
    rep.notes = rep.notes or {}
    table.insert(rep.notes, 1, M.PER_CALL_NOTE)
  end
  if chosen then
    for _, r in ipairs(reader:runs(0)) do
      if r.run_id == chosen.run then chosen.script, chosen.args, chosen.started_at = r.script, r.args, r.started_at end
    end
    rep.chosen = chosen
  end
  return rep
end

return M
