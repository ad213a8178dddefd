-- `llmrun --dry-run script.lua`: the script runs against the simulator,
-- with no delay, and at exit a table on stderr gives the tokens and the
-- cost per model that the same run would have had against the real APIs.
--
-- How: main.c sets LLMRUN_DRY_RUN=1 (setting it by hand does the same);
-- init.lua then calls install(). Every llm.model built afterwards is
-- rewritten by rewrite(): whatever its name or provider, it goes to the
-- built-in simulator (provider "sim"; a base_url or API key given is
-- dropped, so nothing leaves the machine) and every request carries the
-- simulator's per-request knob `x-sim-profile: zero` (no time to first
-- token, no pacing). The model keeps its name, so llm.pricing prices it
-- as the real model (a simulated model costs what the real one of the
-- same name costs).
--
-- What the estimate is: prompt tokens as the simulator counts them,
-- completion tokens as long as the simulator's answers (real answers will
-- differ), costs by llm.pricing's rules (an Anthropic model's cache
-- writes are not simulated), cache hits at 0. Models with no price show
-- "unknown".
--
-- Reports: their header says DRY RUN (latencies are zero, not estimates),
-- and HTML reports are written under a dry-run name (M.report_path);
-- scripts can test llm.dry_run to skip what only a real run can tell.
local M = {}

M.PROFILE_HEADER = "x-sim-profile" -- the simulator's per-request profile knob
M.PROFILE = "zero"

function M.enabled()
  local v = os.getenv("LLMRUN_DRY_RUN")
  return v ~= nil and v ~= "" and v ~= "0"
end

--- A copy of a model spec that goes to the simulator; also returns the
-- provider the spec would have used ("default" when it names none).
function M.rewrite(spec, providers)
  local s = {}
  for k, v in pairs(spec) do s[k] = v end
  local name = s.name or s[1]
  s[1] = nil
  local real = s.provider
  if not real and type(name) == "string" then
    local p, rest = name:match("^([%w_%-]+)/(.+)$")
    if p and providers.get(p) then real, name = p, rest end
  end
  s.name = name
  s.provider = "sim"
  s.base_url, s.api_key, s.organization, s.project = nil, nil, nil, nil
  local headers = {}
  for k, v in pairs(spec.headers or {}) do headers[k] = v end
  headers[M.PROFILE_HEADER] = M.PROFILE
  s.headers = headers
  return s, real or "default"
end

-- ---- report files ----------------------------------------------------------------------

local told = false

--- Where a report file goes in a dry run: "r.html" -> "r.dry-run.html",
-- so an estimate never overwrites a real run's report nor passes for one
-- (said once on stderr). Outside a dry run: path unchanged.
function M.report_path(path)
  if not M.enabled() or path:find("%.dry%-run%.[^./]*$") then return path end
  local base, ext = path:match("^(.*)(%.[^./]+)$")
  local new = base and (base .. ".dry-run" .. ext) or (path .. ".dry-run")
  if not told then
    told = true
    io.stderr:write(("llmrun --dry-run: reports go under dry-run names (%s, not %s)\n"):format(new, path))
  end
  return new
end

-- ---- the summary ---------------------------------------------------------------------

local rows, order = {}, {}

local function row_for(call)
  local m = call.model
  local key = (m.dry_run_provider and m.dry_run_provider ~= "default")
    and (m.dry_run_provider .. "/" .. m.name) or m.name
  local r = rows[key]
  if not r then
    r = { model = key, calls = 0, errors = 0, hits = 0, prompt = 0, cached = 0, completion = 0,
          cost = 0, unknown = 0 }
    rows[key] = r
    order[#order + 1] = key
  end
  return r
end

local function on_finish(call, resp, _err, partial)
  local r = row_for(call)
  r.calls = r.calls + 1
  local res = resp or partial
  if not resp then r.errors = r.errors + 1 end
  if not res then return end
  if res.cached then
    r.hits = r.hits + 1
    return
  end
  local u = res.usage or {}
  r.prompt = r.prompt + (u.prompt_tokens or 0)
  r.cached = r.cached + (u.cached_tokens or 0)
  r.completion = r.completion + (u.completion_tokens or 0)
  if type(res.cost) == "number" then
    r.cost = r.cost + res.cost
  else
    r.unknown = r.unknown + 1
  end
end

local function usd(v, unknown)
  if unknown > 0 then return v > 0 and ("%.6f + unknown"):format(v) or "unknown" end
  return ("%.6f"):format(v)
end

--- The summary text (what is printed at exit).
function M.summary()
  local out = {}
  local src = require("llm.pricing").source()
  out[#out + 1] = ("llmrun --dry-run: estimated tokens and cost of a real run "
    .. "(simulated, zero latency; prices synced %s)\n"):format(src.synced)
  if #order == 0 then
    out[#out + 1] = "  the script made no model calls\n"
    return table.concat(out)
  end
  local fmt = "  %-36s %6s %6s %12s %10s %12s  %s\n"
  local function n(v) return ("%.0f"):format(v) end -- token counts may be floats (JSON)
  out[#out + 1] = fmt:format("model", "calls", "errors", "prompt tok", "cached", "completion", "cost USD")
  local t = { calls = 0, errors = 0, prompt = 0, cached = 0, completion = 0, cost = 0, unknown = 0 }
  for _, key in ipairs(order) do
    local r = rows[key]
    out[#out + 1] = fmt:format(key, r.calls, r.errors, n(r.prompt), n(r.cached), n(r.completion),
      usd(r.cost, r.unknown))
    for k in pairs(t) do t[k] = t[k] + r[k] end
  end
  out[#out + 1] = fmt:format("total", t.calls, t.errors, n(t.prompt), n(t.cached), n(t.completion),
    usd(t.cost, t.unknown))
  out[#out + 1] = "  completion lengths are the simulator's: real answers will differ\n"
  return table.concat(out)
end

--- The per-model numbers: list of {model=, calls=, errors=, hits=, prompt=,
-- cached=, completion=, cost=, unknown=} in first-call order.
function M.rows()
  local list = {}
  for i, key in ipairs(order) do list[i] = rows[key] end
  return list
end

local installed = false

--- The dryrun stage (llm.pipeline): tallies each simulated call's estimate.
M.dryrun_stage = on_finish

function M.install()
  if installed then return end
  installed = true
  require("llm.pipeline").use("dryrun")
  require("_llm.host").on_exit(function() io.stderr:write(M.summary()) end)
end

return M
