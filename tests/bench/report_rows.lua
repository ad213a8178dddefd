-- Writes N synthetic calls as one run into a call log, for the report
-- benchmark (scripts/bench_metrics):  llmrun tests/bench/report_rows.lua DB N
-- Two variants ("baseline", "optimized") over 1,000 cases, lognormal
-- latencies, some failures and cache hits, like an experiment would log.
local calllog = require "_llm.calllog"

local path, n = arg[1], math.tointeger(tonumber(arg[2] or ""))
assert(path and n and n > 0, "usage: report_rows.lua DB N")

local log = assert(calllog.open(path, { batch_rows = 4096, batch_ms = 1000 }))
local run_id = calllog.new_run_id()
log:set_run { run_id = run_id, script = "bench/report_rows.lua", version = llm.version,
              started_at = llm.wallclock(), simulated = true }

-- a small deterministic generator (the numbers need not be good, only fixed)
local seed = 12345
local function rand()
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
end
local function lognormal(mu, sigma)
  local u1, u2 = rand(), rand()
  local z = math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2)
  return math.exp(mu + sigma * z)
end

local t = 1.7e9
for i = 1, n do
  local optimized = i % 2 == 0
  local tag = optimized and "optimized" or "baseline"
  local case = "case-" .. ((i - 1) // 2 % 1000)
  local r = rand()
  local status, ekind, hstatus, cache = "ok", nil, nil, nil
  if r < 0.01 then status, ekind, hstatus = "error", "http", 503
  elseif optimized and r < 0.3 then cache = "exact" end
  local latency = cache and 0.3 or lognormal(optimized and 6.2 or 6.9, 0.35)
  local prompt = optimized and 400 or 900
  local completion = 60 + (i % 40)
  local cost = cache and 0 or (status == "ok" and (prompt * 0.15 + completion * 0.6) * 1e-6 or nil)
  t = t + 0.01
  log:append {
    tag = tag, case = case, model = optimized and "gpt-4o-mini" or "gpt-4o", provider = "sim",
    kind = "chat", simulated = true, started_at = t, latency_ms = latency,
    ttft_ms = cache and nil or latency * 0.3, prompt_tokens = status == "ok" and prompt or nil,
    completion_tokens = status == "ok" and completion or nil, cached_tokens = 0, cost = cost,
    cache_kind = cache, status = status, retries = 0, error_kind = ekind, http_status = hstatus,
    request_id = "req_" .. i,
  }
end
assert(log:flush())
log:close()
print(run_id)
