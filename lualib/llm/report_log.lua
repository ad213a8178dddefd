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
-- pass over the run's rows (src/calllog_query.c).
--
-- reprice: re-costs the logged calls under other prices without calling
-- anything, through require("llm.pricing").reprice(records, target), where
-- records are the logged rows ({model=, provider=, prompt_tokens=,
-- completion_tokens=, cached_tokens=, cache_creation_tokens=,
-- input_tokens=, cache_kind=, status=, cost=, tag=, case=, ...}) and
-- target is what the user named (a model name, or a price table read from
-- a .json or .lua file). It returns the records' new costs: a list of
-- numbers (nil = unknown), or of records with .cost; nil, err on failure.
-- The repriced total appears as its own row next to the logged cost.
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

-- New costs from pricing.reprice's answer, as a list aligned with records.
local function costs_of(records, res)
  local out = {}
  local src = res
  if src == nil then src = records end -- repriced in place
  for i = 1, #records do
    local c = src[i]
    if type(c) == "table" then c = c.cost end
    out[i] = type(c) == "number" and c or false
  end
  return out
end

local function reprice_rows(rows, target_name, target)
  local ok, pricing = pcall(require, "llm.pricing")
  if not ok or type(pricing) ~= "table" or type(pricing.reprice) ~= "function" then
    return nil, "--reprice needs prices (the llm.pricing module), which this build does not have"
  end
  local res, err = pricing.reprice(rows, target)
  if res == nil and err ~= nil then
    return nil, ("cannot reprice as %s: %s"):format(target_name, tostring(err))
  end
  return costs_of(rows, res)
end

--- from_log(opts) -> report | nil, err
-- opts: runs (list of ids or prefixes; empty: the latest), by ("tag" |
-- "model" | "none"), reprice (target), reader (an open reader), title,
-- reps, seed, level.
local build

function M.from_log(opts)
  opts = opts or {}
  if opts.reader then return build(opts, opts.reader) end
  local reader, err = require("llm.log").reader(opts.path)
  if not reader then return nil, err end
  -- the report owns its collectors: the reader can go now
  local ok, rep, rerr = pcall(build, opts, reader)
  reader:close()
  if not ok then error(rep, 0) end
  return rep, rerr
end

build = function(opts, reader)
  local by = opts.by or "tag"
  local wanted = opts.runs or {}
  if #wanted == 0 then wanted = { "" } end
  local ids = {}
  for i, prefix in ipairs(wanted) do
    local id, why = reader:find_run(prefix ~= "" and prefix or nil)
    if not id then
      if prefix == "" then return nil, "no runs logged yet" end
      if why == "ambiguous" then
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
    local target, terr = load_target(opts.reprice)
    if target == nil then return nil, terr end
    local target_name = type(opts.reprice) == "string" and opts.reprice or "the given prices"
    local arms, unknown = {}, {}
    for _, id in ipairs(ids) do
      local rows = reader:calls(id, 0)
      local costs, rerr = reprice_rows(rows, target_name, target)
      if not costs then return nil, rerr end
      for i, row in ipairs(rows) do
        local key = (by == "tag" and row.tag) or (by == "model" and row.model) or ""
        for _, src in ipairs(sources) do
          if src.run == id and src.key == (key or "") then
            local arm = arms[src.name] or { cases = {} }
            arms[src.name] = arm
            if costs[i] then
              arm[#arm + 1] = costs[i]
              arm.cases[#arm] = row.case
            else
              unknown[src.name] = (unknown[src.name] or 0) + 1
            end
          end
        end
      end
    end
    for _, arm in pairs(arms) do
      for i = 1, #arm do if arm.cases[i] == nil then arm.cases = nil break end end
    end
    extra = { { key = "cost_repriced", label = "cost repriced as " .. target_name, unit = "USD",
                mode = "ratio", better = "lower", stat = "total", column = nil,
                arms = arms, unknown = unknown } }
  end

  local title = opts.title or ("run " .. table.concat(ids, ", "))
  return report.compare {
    variants = variants, baseline = baseline, title = title, extra_metrics = extra,
    reps = opts.reps, seed = opts.seed, level = opts.level,
  }
end

return M
