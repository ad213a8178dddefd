-- The gateway's counters: GET /llmrun/stats (JSON) and GET /metrics
-- (Prometheus text format 0.0.4). Counted per request in plain Lua
-- tables: a few table updates, no allocation on the hot path.
local M = {}

local S = {}
S.__index = S

-- Upper bounds (seconds) of the request-duration histogram.
local BUCKETS = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                  0.5, 1, 2.5, 5, 10, 30, 60 }

local loop = require "_llm.loop"

function M.new()
  local b = {}
  for i = 1, #BUCKETS do b[i] = 0 end
  return setmetatable({
    started = loop.now(), requests = {}, by_status = {}, counters = {},
    cache_hits = { exact = 0, semantic = 0 }, tokens_in = 0, tokens_out = 0, cost = 0,
    buckets = b, dur_sum = 0, dur_count = 0,
  }, S)
end

function S:count(name, n)
  self.counters[name] = (self.counters[name] or 0) + (n or 1)
end

--- A request answered (status), with its context (endpoint, t0).
function S:request(ctx, status)
  local key = ctx.endpoint or "other"
  self.requests[key] = (self.requests[key] or 0) + 1
  status = status or 0
  self.by_status[status] = (self.by_status[status] or 0) + 1
  local d = loop.now() - (ctx.t0 or loop.now())
  self.dur_sum = self.dur_sum + d
  self.dur_count = self.dur_count + 1
  for i, le in ipairs(BUCKETS) do
    if d <= le then self.buckets[i] = self.buckets[i] + 1 break end
  end
end

--- A model response (for tokens, cost, hits).
function S:response(resp)
  if resp.cached then
    local k = resp.cached == "semantic" and "semantic" or "exact"
    self.cache_hits[k] = self.cache_hits[k] + 1
  end
  local u = resp.usage
  if type(u) == "table" then
    self.tokens_in = self.tokens_in + (u.prompt_tokens or 0)
    self.tokens_out = self.tokens_out + (u.completion_tokens or 0)
  end
  if type(resp.cost) == "number" then self.cost = self.cost + resp.cost end
end

function S:snapshot()
  local by_status = {}
  for k, v in pairs(self.by_status) do by_status[tostring(k)] = v end
  local total = 0
  for _, v in pairs(self.requests) do total = total + v end
  return {
    uptime_s = loop.now() - self.started, requests = total, by_endpoint = self.requests,
    by_status = by_status, cache_hits = self.cache_hits, prompt_tokens = self.tokens_in,
    completion_tokens = self.tokens_out, cost_usd = self.cost, counters = self.counters,
    mean_duration_ms = self.dur_count > 0 and self.dur_sum / self.dur_count * 1000 or 0,
  }
end

--- Prometheus text; server: the engine's counters.
function S:prometheus(server)
  local out = {}
  local function add(s) out[#out + 1] = s end
  add("# HELP llmrun_proxy_requests_total Requests answered, by endpoint and status.")
  add("# TYPE llmrun_proxy_requests_total counter")
  -- by endpoint (status folded in would need per-pair counts; keep both views)
  local eps = {}
  for k in pairs(self.requests) do eps[#eps + 1] = k end
  table.sort(eps)
  for _, k in ipairs(eps) do add(('llmrun_proxy_requests_total{endpoint="%s"} %d'):format(k, self.requests[k])) end
  add("# HELP llmrun_proxy_responses_total Responses by HTTP status.")
  add("# TYPE llmrun_proxy_responses_total counter")
  local sts = {}
  for k in pairs(self.by_status) do sts[#sts + 1] = k end
  table.sort(sts)
  for _, k in ipairs(sts) do add(('llmrun_proxy_responses_total{status="%s"} %d'):format(k, self.by_status[k])) end
  add("# HELP llmrun_proxy_cache_hits_total Answers from the cache.")
  add("# TYPE llmrun_proxy_cache_hits_total counter")
  add(('llmrun_proxy_cache_hits_total{kind="exact"} %d'):format(self.cache_hits.exact))
  add(('llmrun_proxy_cache_hits_total{kind="semantic"} %d'):format(self.cache_hits.semantic))
  add("# TYPE llmrun_proxy_tokens_total counter")
  add(('llmrun_proxy_tokens_total{direction="prompt"} %d'):format(self.tokens_in))
  add(('llmrun_proxy_tokens_total{direction="completion"} %d'):format(self.tokens_out))
  add("# TYPE llmrun_proxy_cost_usd_total counter")
  add(("llmrun_proxy_cost_usd_total %.8f"):format(self.cost))
  add("# HELP llmrun_proxy_request_duration_seconds Time from a complete request to its answer.")
  add("# TYPE llmrun_proxy_request_duration_seconds histogram")
  local cum = 0
  for i, le in ipairs(BUCKETS) do
    cum = cum + self.buckets[i]
    add(('llmrun_proxy_request_duration_seconds_bucket{le="%g"} %d'):format(le, cum))
  end
  add(('llmrun_proxy_request_duration_seconds_bucket{le="+Inf"} %d'):format(self.dur_count))
  add(("llmrun_proxy_request_duration_seconds_sum %.6f"):format(self.dur_sum))
  add(("llmrun_proxy_request_duration_seconds_count %d"):format(self.dur_count))
  for k, v in pairs(self.counters) do
    add(("# TYPE llmrun_proxy_%s_total counter"):format(k))
    add(("llmrun_proxy_%s_total %d"):format(k, v))
  end
  if server then
    add("# TYPE llmrun_proxy_connections gauge")
    add(("llmrun_proxy_connections %d"):format(server.connections))
    add("# TYPE llmrun_proxy_in_flight gauge")
    add(("llmrun_proxy_in_flight %d"):format(server.in_flight))
    add("# TYPE llmrun_proxy_refused_total counter")
    add(('llmrun_proxy_refused_total{reason="busy"} %d'):format(server.refused_busy))
    add(('llmrun_proxy_refused_total{reason="limit"} %d'):format(server.refused_limit))
    add("# TYPE llmrun_proxy_client_aborts_total counter")
    add(("llmrun_proxy_client_aborts_total %d"):format(server.aborted))
    add("# TYPE llmrun_proxy_timeouts_total counter")
    add(("llmrun_proxy_timeouts_total %d"):format(server.timeouts))
  end
  return table.concat(out, "\n") .. "\n"
end

return M
