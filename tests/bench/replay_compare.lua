-- How close a timed replay came to its recording, call by call:
--   llmrun tests/bench/replay_compare.lua RECORDED REPLAYED [BOUND_MS]
-- Both files: "i ttft_ms latency_ms" lines (tests/bench/replay_run.lua).
-- Prints the distribution of |replayed - recorded| for TTFT and total
-- time (p50, p90, p99, max) and the share of calls within BOUND_MS
-- (default 2) on both, and the signed mean (a bias shows there).
local rec_path, rep_path, bound = arg[1], arg[2], tonumber(arg[3] or "2")
local function read(path)
  local t = {}
  for line in io.lines(path) do
    local i, a, b = line:match("^(%d+) (%S+) (%S+)$")
    if i then t[tonumber(i)] = { tonumber(a), tonumber(b) } end
  end
  return t
end
local rec, rep = read(rec_path), read(rep_path)
local d_ttft, d_total, within, n, bias_t, bias_l = {}, {}, 0, 0, 0, 0
for i, r in pairs(rec) do
  local p = rep[i]
  if p then
    n = n + 1
    local dt, dl = p[1] - r[1], p[2] - r[2]
    bias_t, bias_l = bias_t + dt, bias_l + dl
    d_ttft[#d_ttft + 1], d_total[#d_total + 1] = math.abs(dt), math.abs(dl)
    if math.abs(dt) <= bound and math.abs(dl) <= bound then within = within + 1 end
  end
end
local function q(list, p)
  table.sort(list)
  return list[math.max(1, math.ceil(p * #list))] or 0
end
local function line(name, list)
  return ("%-6s |diff| ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f"):format(name, q(list, 0.5), q(list, 0.9),
    q(list, 0.99), q(list, 1))
end
print(("%d calls compared (recorded %d)"):format(n, (function() local c = 0 for _ in pairs(rec) do c = c + 1 end return c end)()))
print(line("TTFT", d_ttft))
print(line("total", d_total))
print(("signed mean: TTFT %+.3f ms, total %+.3f ms"):format(bias_t / math.max(n, 1), bias_l / math.max(n, 1)))
print(("within %g ms on both: %d of %d (%.1f%%)"):format(bound, within, n, within / math.max(n, 1) * 100))
