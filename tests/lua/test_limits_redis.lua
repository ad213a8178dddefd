-- Rate limits shared through Redis (llm.limits_redis) against a real
-- redis-server: three processes paced by one TPM limit together, Redis
-- down at start and restarted mid-run under each on_error policy.
local T = ...
local mock = require "mock"
local limits = require "llm.limits"

local srv = mock.redis()
local bin = os.getenv("LLMRUN") or "llmrun"

local write = T.write_file

local function fresh()
  limits.reset()
  limits.enable(true)
end

T.test("three processes share one TPM limit: together they go at its pace, without 429s", function()
  fresh()
  local dir = T.tmpdir()
  -- one simulator (this process) with the limit; three clients paced through Redis
  llm.sim.configure { rate_limit = { tpm = 240000, count = "usage" } }
  local base = llm.sim.ensure()
  write(dir .. "/c.lua", ([[
    llm.limits.set("gpt-4o-mini", { tpm = 240000, redis = %q })
    local m = llm.model { "gpt-4o-mini", provider = "openai", base_url = %q, api_key = "sk-test",
      headers = { ["x-sim-ttft-ms"] = "5", ["x-sim-tokens-per-s"] = "0" } }
    local list, toks, retries = {}, 0, 0
    for i = 1, 40 do list[i] = i end
    local t0 = llm.now()
    llm.map(list, function(i)
      local r = assert(m:chat { user = ("word "):rep(60) .. arg[1] .. i, max_tokens = 60 })
      toks = toks + r.usage.total_tokens
      retries = retries + r.retries
    end, { concurrency = 16, progress = false })
    print(toks, retries, llm.now() - t0)
  ]]):format(srv.url, base))
  local before = llm.sim.stats().rate_limited
  -- the simulator answers from this process: the clients run beside it
  local cmd = {}
  for i = 1, 3 do
    cmd[#cmd + 1] = ("(LLMRUN_LOG=0 %s %s/c.lua %d >%s/out%d 2>&1) &"):format(bin, dir, i, dir, i)
  end
  local t0 = llm.now()
  local p = io.popen(table.concat(cmd, " ") .. " wait; echo done")
  -- the simulator runs on its own thread; read the pipe from a task so this one waits
  local out = p:read("a")
  p:close()
  local wall = llm.now() - t0
  T.ok(out:find("done"), out)
  local total = 0
  for i = 1, 3 do
    local f = io.open(dir .. "/out" .. i)
    local s = f:read("a")
    f:close()
    local toks, retries = s:match("^(%d+)%s+(%d+)")
    T.ok(toks, s)
    T.eq(tonumber(retries), 0, s)
    total = total + tonumber(toks)
  end
  T.eq(llm.sim.stats().rate_limited - before, 0, "no 429")
  local ideal = total / 240000 * 60
  -- three unshared processes would each go at the full limit: a third of this
  T.ok(wall > ideal * 0.8, ("together at the limit's pace: %.2f s for %d tokens (ideal %.2f s)"):format(wall, total, ideal))
  os.execute("rm -rf '" .. dir .. "'")
  llm.sim.configure { rate_limit = false }
end)

T.test("Redis down at start, on_error = \"fail\": the call fails with kind limit, unsent, no hang", function()
  fresh()
  local dead <close> = mock.redis()
  dead:kill()
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" },
                        limits = { tpm = 100000, redis = dead.url } }
  local before = llm.sim.stats().requests
  local t0 = llm.now()
  local r, err = m:chat "hi"
  T.eq(r, nil)
  T.eq(err.kind, "limit")
  T.eq(err.unreachable, true)
  T.ok(err.message:find("unreachable", 1, true) and err.message:find("on_error", 1, true), err.message)
  T.eq(llm.sim.stats().requests, before, "not sent")
  T.ok(llm.now() - t0 < 3, "no hang")
  T.eq(llm.limits.stats()[1].in_flight, 0, "the slot was given back")
end)

T.test("Redis down at start, on_error = \"local\": 1/N of the limit here, one warning; restarted: shared again", function()
  fresh()
  local r <close> = mock.redis()
  r:kill()
  local dir = T.tmpdir()
  write(dir .. "/l.lua", ([[
    local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" },
      limits = { rpm = 1200, redis = %q, on_error = "local", processes = 4 } }
    local t0 = llm.now()
    for i = 1, 12 do assert(m:chat("offline " .. i)) end
    print(("%%.3f"):format(llm.now() - t0))
  ]]):format(r.url))
  local p = io.popen(("LLMRUN_LOG=0 %s %s/l.lua 2>%s/err"):format(bin, dir, dir))
  local out = p:read("a")
  p:close()
  local f = io.open(dir .. "/err")
  local errs = f:read("a")
  f:close()
  -- 1200 rpm / 4 = 5 per second: 12 calls need about 2.2 s (the cap holds 1)
  local secs = tonumber(out:match("([%d.]+)"))
  T.ok(secs and secs > 1.8, "paced at a quarter of the limit: " .. out .. errs)
  local _, warnings = errs:gsub("Redis is unreachable", "")
  T.eq(warnings, 1, errs)
  T.ok(errs:find("divided by 4", 1, true), errs)
  os.execute("rm -rf '" .. dir .. "'")
  -- in this process: offline first, then Redis comes back and is used again
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" },
                        limits = { rpm = 100000, redis = r.url, on_error = "local", processes = 2 } }
  assert(m:chat "offline here")
  T.eq(llm.limits.stats()[1].shared.offline, true)
  r:start()
  local ok
  for _ = 1, 40 do
    ok = m:chat "online"
    if ok and not llm.limits.stats()[1].shared.offline then break end
    llm.sleep(0.05)
  end
  T.eq(llm.limits.stats()[1].shared.offline, false, "shared again")
  T.ok(r:cli("--scan"):find("{limit:", 1, true), "its state is in Redis")
end)

T.test("Redis restarted mid-run, on_error = \"fail\": refused during the outage, paced after it", function()
  fresh()
  local r <close> = mock.redis()
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" },
                        limits = { rpm = 100000, redis = r.url } }
  assert(m:chat "before")
  r:kill()
  local _, err = m:chat "during"
  T.eq(err.kind, "limit")
  T.eq(err.unreachable, true)
  r:start()
  local ok
  for _ = 1, 40 do
    ok = m:chat "after"
    if ok then break end
    llm.sleep(0.05)
  end
  T.ok(ok, "works again (the script is loaded again after NOSCRIPT)")
end)

T.test("Redis restarted mid-run, on_error = \"local\": calls go on with 1/N meanwhile, shared again after", function()
  fresh()
  local r <close> = mock.redis()
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" },
                        limits = { rpm = 100000, redis = r.url, on_error = "local", processes = 3 } }
  assert(m:chat "before")
  T.eq(llm.limits.stats()[1].shared.offline, false)
  r:kill()
  for i = 1, 3 do assert(m:chat("during " .. i), "goes on locally") end
  T.eq(llm.limits.stats()[1].shared.offline, true)
  T.near(limits.for_model(m).shared.offline.requests.limit, 100000 / 3, 1e-6, "a third of the limit")
  r:start()
  for _ = 1, 40 do
    assert(m:chat "after")
    if not llm.limits.stats()[1].shared.offline then break end
    llm.sleep(0.05)
  end
  T.eq(llm.limits.stats()[1].shared.offline, false, "shared again")
end)
