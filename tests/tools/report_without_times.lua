-- llmrun tests/tools/report_without_times.lua REPORT.json -> prints the
-- report with what is a measurement of time left out, in one canonical
-- spelling (keys sorted), for comparing a live run's JSON report with its
-- replay's byte for byte: the metric rows measured in ms or s (latency,
-- TTFT, wall time), each variant's latency, ttft, lookup, tokens_per_s
-- and wall_s, and the `replayed` stamp (when and where the answers were
-- recorded). Everything else (tokens, cost, quality, counts, intervals
-- of those, notes) is kept as it is.
local path = assert(arg[1], "usage: llmrun report_without_times.lua REPORT.json")
local f = assert(io.open(path, "rb"))
local report = require("_llm.json").decode(f:read("a"))
f:close()
report.replayed = nil
local metrics = {}
for _, m in ipairs(report.metrics or {}) do
  if m.unit ~= "ms" and m.unit ~= "s" then metrics[#metrics + 1] = m end
end
report.metrics = metrics
for _, v in ipairs(report.variants or {}) do
  v.latency, v.ttft, v.lookup, v.tokens_per_s, v.wall_s = nil, nil, nil, nil, nil
end
io.write(require("llm.cache_canon").encode(report), "\n")
