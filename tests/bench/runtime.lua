-- Runtime benchmark (issue: runtime foundation), run by scripts/bench_runtime.
-- 1. llm.map over 1,000 tasks that each sleep 0.1 s, concurrency 100:
--    ideal 1.0 s (10 waves), target < 1.3 s.
-- 2. 10,000 tasks sleeping at once: peak RSS, target < 50 MB.
local function rss_kb(field)
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+)"))
end

local mode = arg[1]
if mode == "map" then
  local items = {}
  for i = 1, 1000 do items[i] = i end
  local t0 = llm.now()
  llm.map(items, function() llm.sleep(0.1) end, { concurrency = 100 })
  print(("map_wall_s=%.3f"):format(llm.now() - t0))
elseif mode == "sleepers" then
  local base = rss_kb("VmRSS")
  local tasks = {}
  local t0 = llm.now()
  for i = 1, 10000 do tasks[i] = llm.spawn(llm.sleep, 0.5) end
  llm.sleep(0.1) -- all of them are now suspended in llm.sleep
  local during = rss_kb("VmRSS")
  for i = 1, 10000 do tasks[i]:wait() end
  print(("sleepers_wall_s=%.3f base_rss_kb=%d rss_kb=%d peak_rss_kb=%d"):format(
    llm.now() - t0, base, during, rss_kb("VmHWM")))
else
  error("usage: runtime.lua map|sleepers")
end
