-- What a finished call amounts to, for the observers (call log, trackers,
-- progress): one function so they all read calls the same way.
--
-- outcome(call, resp, err, partial) returns, flat (no table per call):
--   status    "ok" | "error" | "partial" | "cancelled" (the caller gave up:
--             logged, but not a measurement of the model: flags is nil)
--   flags     for _llm.metrics collectors (OK/ERROR/PARTIAL/HIT)
--   latency   ms: the model latency; for a cache hit, the lookup time
--             (a hit's response may carry the original call's latency,
--             which must never count as this call's)
--   ttft      ms, or nil (hits have none)
--   cost      USD or nil (unknown); a hit costs 0
--   usage     the usage table, or nil
--   retries   number
--   cache     cache kind ("exact", "semantic", ...) or nil
local metrics = require "_llm.metrics"

local OK, ERROR, PARTIAL, HIT = metrics.OK, metrics.ERROR, metrics.PARTIAL, metrics.HIT

return function(call, resp, err, partial)
  local elapsed = call.t_end and call.t0 and (call.t_end - call.t0) * 1000 or nil
  if type(err) == "table" and err.kind == "cancelled" then
    return "cancelled", nil, elapsed, nil, nil, nil, err.retries or 0, nil
  end
  if err ~= nil then
    local p = partial
    local usage = p and p.usage or nil
    local retries = (type(err) == "table" and err.retries) or (p and p.retries) or 0
    if p and (p.text or "") ~= "" then
      return "partial", ERROR | PARTIAL, elapsed, p.ttft_ms, p.cost, usage, retries, nil
    end
    return "error", ERROR, elapsed, nil, p and p.cost or nil, usage, retries, nil
  end
  if resp == nil then
    return "ok", OK, elapsed, nil, nil, nil, 0, nil
  end
  local cache = resp.cached
  if cache then
    if cache == true then cache = "exact" end
    return "ok", OK | HIT, resp.lookup_ms or elapsed, nil, 0, resp.usage, 0, tostring(cache)
  end
  return "ok", OK, resp.latency_ms or elapsed, resp.ttft_ms, resp.cost, resp.usage,
    resp.retries or 0, nil
end
