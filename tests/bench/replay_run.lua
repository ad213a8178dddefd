-- The workload of scripts/bench_replay, run once to record it
-- (LLMRUN_RECORD) and again to replay it (LLMRUN_REPLAY):
--   llmrun tests/bench/replay_run.lua OUT N CONCURRENCY stream|chat [MAX_TOKENS]
-- N calls of the simulator's gpt-4o-mini (its pace from LLMRUN_SIM_*), at
-- the given concurrency. Writes "i ttft_ms latency_ms" per call to OUT (in
-- call order) and prints one line of JSON: calls, errors, wall_s, calls/s.
local cjson = require "cjson"
local out, n, conc, kind, max_tokens = arg[1], tonumber(arg[2]), tonumber(arg[3]), arg[4],
  tonumber(arg[5] or "30")
assert(out and n and conc and (kind == "stream" or kind == "chat"),
  "usage: replay_run.lua OUT N CONCURRENCY stream|chat [MAX_TOKENS]")
local m = llm.model { "gpt-4o-mini", max_retries = 0 }
local items = {}
for i = 1, n do items[i] = i end
local errors = 0
local t0 = llm.now()
local results = llm.map(items, function(i)
  local req = { user = "Tell story number " .. i, max_tokens = max_tokens }
  local r, err
  if kind == "stream" then
    r, err = m:stream(req, { on_delta = function() end })
  else
    r, err = m:chat(req)
  end
  if not r then
    errors = errors + 1
    return { false }
  end
  return { r.ttft_ms, r.latency_ms }
end, { concurrency = conc, progress = false })
local wall = llm.now() - t0
local f = assert(io.open(out, "w"))
for i, r in ipairs(results) do
  if r[1] then f:write(("%d %.3f %.3f\n"):format(i, r[1], r[2])) end
end
f:close()
print(cjson.encode { calls = n, errors = errors, wall_s = wall, calls_per_s = n / wall })
if llm.replay.active() then -- how the replay went: order waits, the replayer's lateness
  local st = llm.replay.stats()
  io.stderr:write(("replay: %d calls replayed, %d missing; order: %d waits, %d out of turn, %d skipped; "
    .. "replayer: %d pieces, late by %.3f ms on average, %.3f ms at most, %d over 1 ms\n"):format(st.replayed,
    st.missing, st.order and st.order.waits or 0, st.order and st.order.out_of_turn or 0,
    st.order and st.order.skipped or 0, st.server.pieces, st.server.late_us_mean / 1000,
    st.server.late_us_max / 1000, st.server.late_1ms))
end
