-- The pacing benchmark's runs (scripts/bench_pacing, scripts/bench_redis),
-- against the in-process simulator with its rate limits on (count =
-- "usage": a request counts its prompt plus the completion it gets).
--
--   llmrun pacing.lua sync N RPM TPM      paced (limits set) vs pacing off
--   llmrun pacing.lua halve SECONDS TPM   learned from headers; the simulator's
--                                         TPM halved at SECONDS/3
--   llmrun pacing.lua shared REDIS P N TPM WINDOW BURST
--                                         P client processes x N calls, one
--                                         TPM through Redis; worst sliding window
--   (llmrun pacing.lua client ...: one of those processes)
-- Prints RESULT lines (key=value) for the script to read.
local mode = arg[1]

local function prompt(i)
  -- mixed prompt lengths: 20 to ~700 words, a fixed sequence
  local words = 20 + (i * 7919) % 680
  return ("The quick brown fox jumps over the lazy dog %d. "):rep(words // 10 + 1) .. i
end

local HEADERS = { ["x-sim-ttft-ms"] = "30", ["x-sim-tokens-per-s"] = "2000", ["x-sim-jitter"] = "0.2" }

local function run(m, n, concurrency, retries)
  local list = {}
  for i = 1, n do list[i] = i end
  local out = { tokens = 0, retries = 0, failed = 0, ends = {} }
  local t0 = llm.now()
  llm.map(list, function(i)
    local r, err = m:chat({ user = prompt(i), max_tokens = 400 }, { max_retries = retries })
    if r then
      out.tokens = out.tokens + r.usage.prompt_tokens + r.usage.completion_tokens
      out.retries = out.retries + r.retries
      out.ends[#out.ends + 1] = { llm.now() - t0, r.usage.prompt_tokens + r.usage.completion_tokens }
    else
      out.failed = out.failed + 1
      out.retries = out.retries + (err.retries or 0)
    end
  end, { concurrency = concurrency, progress = false })
  out.wall = llm.now() - t0
  return out
end

local function restart_sim(cfg)
  llm.sim.stop()
  llm.sim.configure(cfg)
  llm.sim.ensure()
end

if mode == "sync" then
  local n, rpm, tpm = tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
  local cfg = { rate_limit = { rpm = rpm, tpm = tpm, count = "usage" } }
  for _, arm in ipairs { "paced", "unpaced" } do
    restart_sim(cfg) -- a fresh simulator: its buckets start full for each arm
    llm.limits.reset()
    llm.limits.enable(arm == "paced")
    if arm == "paced" then llm.limits.set("sim/gpt-4o-mini", { rpm = rpm, tpm = tpm }) end
    local m = llm.model { "sim/gpt-4o-mini", headers = HEADERS }
    local r = run(m, n, 256, 20)
    local st = llm.sim.stats()
    print(("RESULT arm=%s requests=%d wall=%.2f tokens=%d ideal=%.2f throughput_tpm=%.0f rate_limited=%d failed=%d retries=%d")
      :format(arm, n, r.wall, r.tokens, r.tokens / tpm * 60, r.tokens / r.wall * 60, st.rate_limited,
        r.failed, r.retries))
  end
elseif mode == "halve" then
  local secs, tpm = tonumber(arg[2]), tonumber(arg[3])
  restart_sim { rate_limit = { tpm = tpm, count = "usage" } }
  llm.limits.reset()
  local m = llm.model { "sim/gpt-4o-mini", headers = HEADERS }
  local t0 = llm.now()
  local change_at, followed_at = secs / 3, nil
  local stop = false
  local r429_before
  llm.spawn(function()
    llm.sleep(change_at)
    r429_before = llm.sim.stats().rate_limited
    llm.sim.configure { rate_limit = { tpm = tpm // 2, count = "usage" } }
    while not followed_at and not stop do
      local s = llm.limits.stats()[1]
      if s and s.tpm == tpm // 2 then followed_at = llm.now() - t0 end
      llm.sleep(0.01)
    end
  end)
  local done = {}
  local list = {}
  for i = 1, 100000 do list[i] = i end
  llm.map(list, function(i)
    if llm.now() - t0 > secs then return end
    local r = m:chat({ user = prompt(i), max_tokens = 400 }, { max_retries = 20 })
    if r then done[#done + 1] = { llm.now() - t0, r.usage.prompt_tokens + r.usage.completion_tokens } end
  end, { concurrency = 64, progress = false })
  stop = true
  -- throughput after the change settled (from change + 5 s, or halfway, to the end)
  local from, to = change_at + math.min(5, (secs - change_at) / 2), secs
  local toks = 0
  for _, d in ipairs(done) do if d[1] >= from and d[1] < to then toks = toks + d[2] end end
  print(("RESULT tpm=%d halved_to=%d change_at=%.1f followed_after=%.3f after_tpm=%.0f ratio=%.3f rate_limited_after=%d")
    :format(tpm, tpm // 2, change_at, followed_at and followed_at - change_at or -1,
      toks / (to - from) * 60, toks / (to - from) * 60 / (tpm // 2), llm.sim.stats().rate_limited - (r429_before or 0)))
elseif mode == "shared" then
  local url, procs, n, tpm, window, burst = arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5]),
    tonumber(arg[6]), arg[7]
  restart_sim { rate_limit = { tpm = tpm, count = "usage" } }
  local base = llm.sim.ensure()
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  local script = debug.getinfo(1, "S").source:sub(2)
  local cmd = {}
  for i = 1, procs do
    cmd[#cmd + 1] = ("(LLMRUN_LOG=0 %q %q client %q %q %d %d %s %d > %s/out%d 2>&1) &"):format(
      arg[-1] or "llmrun", script, url, base, n, tpm, burst, i, dir, i)
  end
  -- the simulator answers on its own thread while this one waits for the clients
  local p = io.popen(table.concat(cmd, " ") .. " wait")
  p:read("a")
  p:close()
  local sends, calls = {}, 0
  for i = 1, procs do
    for line in io.lines(dir .. "/out" .. i) do
      local t, k = line:match("^S (%S+) (%d+)$")
      if t then sends[#sends + 1] = { tonumber(t), tonumber(k) } calls = calls + 1
      elseif line ~= "" then io.stderr:write(line, "\n") end
    end
  end
  os.execute("rm -rf " .. dir)
  table.sort(sends, function(a, b) return a[1] < b[1] end)
  -- the worst sliding window of `window` seconds, over the tokens as sent
  local worst, j, sum, total = 0, 1, 0, 0
  for i = 1, #sends do
    sum, total = sum + sends[i][2], total + sends[i][2]
    while sends[i][1] - sends[j][1] >= window do sum = sum - sends[j][2] j = j + 1 end
    if sum > worst then worst = sum end
  end
  local limit_w = tpm * window / 60
  local span = sends[#sends][1] - sends[1][1]
  print(("RESULT calls=%d tokens=%d span=%.1f window=%g limit_per_window=%.0f worst_window=%d over=%.4f utilization=%.4f rate_limited=%d")
    :format(calls, total, span, window, limit_w, worst, worst / limit_w - 1, total / span * 60 / tpm,
      llm.sim.stats().rate_limited))
elseif mode == "client" then
  local url, base, n, tpm, burst, id = arg[2], arg[3], tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6]), arg[7]
  llm.limits.set("gpt-4o-mini", { tpm = tpm, redis = url, burst = burst })
  local m = llm.model { "gpt-4o-mini", provider = "openai", base_url = base, api_key = "sk-bench",
                        headers = { ["x-sim-ttft-ms"] = "20", ["x-sim-tokens-per-s"] = "0" } }
  local sent = setmetatable({}, { __mode = "k" })
  -- the moment each call leaves (after the pacer), and what it used
  llm.calls.on_before(function(call) sent[call] = llm.wallclock() end, 95)
  llm.calls.on_finish(function(call, r)
    if r and r.usage and sent[call] then
      io.write(("S %.4f %d\n"):format(sent[call], r.usage.prompt_tokens + r.usage.completion_tokens))
    end
  end)
  local list = {}
  for i = 1, n do list[i] = i end
  llm.map(list, function(i)
    assert(m:chat({ user = ("word "):rep(40 + (i * 13) % 120) .. id .. ":" .. i, max_tokens = 60 }, { max_retries = 20 }))
  end, { concurrency = 32, progress = false })
else
  error("mode: sync | halve | shared")
end
