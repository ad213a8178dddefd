-- How late this machine wakes a waiting task, for reading replay timings:
--   llmrun tests/bench/timer_floor.lua [N]
-- N sleeps of 5 ms on llmrun's loop (epoll + timers, the same wake-ups a
-- replayed stream's client and the replayer depend on); prints how late
-- they woke (p50, p99, max) and how many were over 2 ms. On a quiet
-- machine all are well under 1 ms; on a loaded one no replay can be more
-- exact than this.
local n = tonumber(arg[1] or "500")
local late, over = {}, 0
for i = 1, n do
  local t = llm.now()
  llm.sleep(0.005)
  local l = (llm.now() - t - 0.005) * 1000
  late[i] = l
  if l > 2 then over = over + 1 end
end
table.sort(late)
print(("timer floor: %d sleeps of 5 ms woke late by p50 %.3f ms, p99 %.3f ms, max %.3f ms; %d over 2 ms")
  :format(n, late[math.ceil(n * 0.5)], late[math.ceil(n * 0.99)], late[n], over))
