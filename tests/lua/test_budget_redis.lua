-- Budgets shared through Redis (llm.budget{redis=, name=}, llm.budget_redis)
-- against a real redis-server: one cap over several processes, a dead
-- process's reservation released by its expiry, the policies when Redis is
-- unreachable ("fail" refuses, "local" divides the cap and says so, its
-- spending joins the shared total later), restarts, and misuse.
local T = ...
local mock = require "mock"

local srv = mock.redis()
local bin = os.getenv("LLMRUN") or "llmrun"

local write = T.write_file

local run_many = T.run_many
local shared_budget_run = require "shared_budget_run"

local function name() return "b" .. math.random(1, 1 << 30) end

local function close_all()
  for _, b in ipairs(llm.budget.active()) do b:close() end
end

T.test("one cap over three processes: their spending together stays under it", function()
  local n = name()
  -- each call costs at most its estimate (max_tokens bounds the answer),
  -- so the processes together may never pass the cap
  local total, oks, refusals = shared_budget_run(T, run_many, { processes = 3, calls = 40, ttft_ms = 20,
                                                                 usd = 0.0006, name = n, redis = srv.url })
  T.ok(total <= 0.0006 * (1 + 1e-9), ("spent %.9f over a cap of 0.0006"):format(total))
  T.ok(refusals > 0 and oks > 3, ("%d calls, %d refused"):format(oks, refusals))
  local b = llm.budget { usd = 0.0006, name = n, redis = srv.url }
  local st = assert(b:shared_status())
  T.near(st.spent, total, 1e-8, "Redis's total is the processes' sum")
  T.eq(st.in_flight, 0)
  T.eq(st.reservations, 0)
  T.near(st.remaining, 0.0006 - total, 1e-8)
  b:close()
end)

T.test("a refusal names the shared cap; status has both views", function()
  close_all()
  local n = name()
  local b = llm.budget { usd = 0.00002, name = n, redis = srv.url }
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" } }
  local r1 = assert(m:chat { user = "hello", max_tokens = 20 })
  local r, err
  for _ = 1, 50 do
    r, err = m:chat { user = "hello again", max_tokens = 20 }
    if not r then break end
  end
  T.eq(r, nil)
  T.eq(err.kind, "budget")
  T.eq(err.shared, true)
  T.ok(err.message:find("shared through Redis", 1, true), err.message)
  local s = b:status()
  T.ok(s.spent >= r1.cost, llm.inspect(s) .. " " .. r1.cost)
  T.eq(s.shared.name, n)
  T.ok(s.shared.spent and s.shared.spent > 0)
  T.eq(b:reset(), true)
  T.eq(assert(b:shared_status()).spent, 0)
  b:close()
end)

T.test("a dead process's reservation is released when it expires", function()
  local n = name()
  local dir = T.tmpdir()
  write(dir .. "/s.lua", ([[
    local b = llm.budget { usd = 1, name = %q, redis = %q, reservation_ttl = 0.5 }
    local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-ttft-ms"] = "20000" } }
    m:chat { user = "a long one", max_tokens = 100 }
  ]]):format(n, srv.url))
  os.execute(("LLMRUN_LOG=0 %s %s/s.lua >/dev/null 2>&1 & echo $! >%s/pid"):format(bin, dir, dir))
  local b = llm.budget { usd = 1, name = n, redis = srv.url }
  local st
  for _ = 1, 100 do
    st = assert(b:shared_status())
    if st.in_flight > 0 then break end
    llm.sleep(0.02)
  end
  T.ok(st.in_flight > 0, "the other process reserved")
  local f = io.open(dir .. "/pid")
  os.execute("kill -9 " .. f:read("l"))
  f:close()
  os.execute("rm -rf '" .. dir .. "'")
  llm.sleep(0.6)
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" } }
  assert(m:chat { user = "after", max_tokens = 5 }) -- a reservation sweeps the expired ones
  st = assert(b:shared_status())
  T.eq(st.in_flight, 0, "the dead process's estimate was released")
  T.eq(st.reservations, 0)
  b:close()
end)

T.test("Redis unreachable, on_error = \"fail\" (the default): refused, never sent, a clear message", function()
  close_all()
  local dead <close> = mock.redis()
  dead:kill()
  local b = llm.budget { usd = 1, name = name(), redis = dead.url }
  local sent = 0
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" } }
  local hook = function(call, resp) if resp and resp.cached == false then sent = sent + 1 end end
  llm.calls.on_finish(hook)
  local t0 = llm.now()
  local r, err = m:chat "hi"
  llm.calls.off(hook)
  T.eq(r, nil)
  T.eq(err.kind, "budget")
  T.eq(err.unreachable, true)
  T.ok(err.message:find("unreachable", 1, true) and err.message:find("on_error", 1, true), err.message)
  T.eq(sent, 0)
  T.ok(llm.now() - t0 < 3, "no hang")
  T.eq(b:status().refused, 1)
  T.eq(b:status().in_flight, 0, "the local reservation was given back")
  b:close()
end)

T.test("Redis unreachable, on_error = \"local\": 1/N of the cap here, one warning, spending joins the total later", function()
  local r <close> = mock.redis()
  local n = name()
  r:kill()
  local outs, errs, sts = run_many(1, ([[
    local b = llm.budget { usd = 0.0002, name = %q, redis = %q, on_error = "local", processes = 4 }
    local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" } }
    local ok, spent, refused = 0, 0, 0
    for i = 1, 40 do
      local r, err = m:chat { user = "offline " .. i, max_tokens = 20 }
      if r then ok, spent = ok + 1, spent + r.cost else refused = refused + 1 assert(err.kind == "budget") end
    end
    print(("%%d %%d %%.9f"):format(ok, refused, spent))
  ]]):format(n, r.url))
  T.eq(sts[1], 0, outs[1] .. errs[1])
  local ok, refused, spent = outs[1]:match("^(%d+) (%d+) (%S+)")
  T.ok(tonumber(ok) > 0 and tonumber(refused) > 0, outs[1])
  T.ok(tonumber(spent) <= 0.0002 / 4 + 1e-12, "at most a quarter of the cap: " .. spent)
  local _, warnings = errs[1]:gsub("Redis is unreachable", "")
  T.eq(warnings, 1, errs[1])
  T.ok(errs[1]:find("divided by 4", 1, true), errs[1])
  -- the same in this process, then Redis comes back: the offline spending is added
  close_all()
  local b = llm.budget { usd = 0.0002, name = n, redis = r.url, on_error = "local", processes = 4 }
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" } }
  local offline = assert(m:chat { user = "offline here", max_tokens = 20 }).cost
  r:start()
  llm.sleep(0.3)
  local online
  for _ = 1, 20 do
    online = m:chat { user = "online", max_tokens = 20 }
    if online and b:status().shared.spent then break end
    llm.sleep(0.1)
  end
  T.ok(online, "calls go on once Redis is back")
  llm.sleep(0.05)
  local st = assert(b:shared_status())
  T.near(st.spent, offline + online.cost, 1e-8, "offline spending carried into the shared total")
  b:close()
end)

T.test("Redis restarted mid-run: refused during the outage, fine after it", function()
  close_all()
  local r <close> = mock.redis()
  local b = llm.budget { usd = 1, name = name(), redis = r.url }
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" } }
  assert(m:chat "before")
  r:kill()
  local _, err = m:chat "during"
  T.eq(err.kind, "budget")
  T.eq(err.unreachable, true)
  r:start()
  local ok
  for _ = 1, 40 do
    ok = m:chat "after"
    if ok then break end
    llm.sleep(0.05)
  end
  T.ok(ok, "works again")
  b:close()
end)

T.test("misuse: a shared budget needs a name; local needs processes; options need redis", function()
  close_all()
  T.err(function() llm.budget { usd = 1, redis = srv.url } end, "needs a name")
  T.err(function() llm.budget { usd = 1, name = "x", redis = srv.url, on_error = "local" } end, "processes")
  T.err(function() llm.budget { usd = 1, name = "x", redis = srv.url, on_error = "warn" } end, "on_error")
  T.err(function() llm.budget { usd = 1, on_error = "local" } end, "redis")
  T.err(function() llm.budget { usd = 1, name = "x", redis = "http://x" } end, "URL")
  T.err(function() llm.budget({ usd = 1 }):reset() end, "shared through Redis")
  close_all()
end)
