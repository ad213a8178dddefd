-- Tasks and combinators: llm.spawn/wait/cancel/sleep, map, parallel, race,
-- with_timeout, semaphore, and waiting inside user coroutines.
local T = ...

T.test("now is monotonic with sub-millisecond resolution", function()
  local a = llm.now()
  local b = llm.now()
  T.ok(b >= a)
  T.ok(math.type(a) == "float")
end)

T.test("sleep waits about the requested time", function()
  local t0 = llm.now()
  llm.sleep(0.05)
  local dt = llm.now() - t0
  T.ok(dt >= 0.05 and dt < 2, "slept " .. dt) -- upper bound generous: shared CI machines
end)

T.test("sleep rejects bad durations", function()
  T.err(function() llm.sleep(-1) end, "seconds >= 0")
  T.err(function() llm.sleep(0/0) end, "seconds >= 0")
  T.err(function() llm.sleep("x") end, "number expected")
end)

T.test("spawn runs concurrently and wait returns results", function()
  local order = {}
  local a = llm.spawn(function(x) llm.sleep(0.03); order[#order + 1] = "a"; return x, "two" end, 1)
  local b = llm.spawn(function() llm.sleep(0.01); order[#order + 1] = "b" end)
  T.eq({ a:wait() }, { true, 1, "two" })
  T.eq({ b:wait() }, { true })
  T.eq(order, { "b", "a" })
  T.eq(a:status(), "done")
end)

T.test("wait on a failed task returns false, err, traceback", function()
  local t = llm.spawn(function() error("bad thing") end)
  local ok, err, tb = t:wait()
  T.eq(ok, false)
  T.ok(err:find("bad thing", 1, true))
  T.ok(tb:find("stack traceback", 1, true))
  T.eq(t:status(), "failed")
end)

T.test("cancel stops a sleeping task and its children, closes its variables", function()
  local closed, child_ran = false, false
  local child
  local t = llm.spawn(function()
    local _ <close> = setmetatable({}, { __close = function() closed = true end })
    child = llm.spawn(function() llm.sleep(0.05); child_ran = true end)
    llm.sleep(10)
  end)
  llm.sleep(0.01)
  t:cancel()
  local ok, err = t:wait()
  T.eq(ok, false)
  T.eq(err.kind, "cancelled")
  T.ok(closed, "__close ran")
  llm.sleep(0.08)
  T.eq(child:status(), "cancelled")
  T.eq(child_ran, false)
  t:cancel() -- twice is harmless
end)

T.test("a task cannot wait for itself", function()
  local t
  t = llm.spawn(function() return pcall(function() return t:wait() end) end)
  local ok, pok, perr = t:wait()
  T.eq(ok, true)
  T.eq(pok, false)
  T.ok(tostring(perr):find("cannot wait for itself", 1, true))
end)

T.test("map keeps input order and bounds concurrency", function()
  local running, peak = 0, 0
  local out = llm.map({ 5, 1, 4, 2, 3 }, function(x, i)
    running = running + 1
    peak = math.max(peak, running)
    llm.sleep(x * 0.005)
    running = running - 1
    return x * 10 + i
  end, { concurrency = 2 })
  T.eq(out, { 51, 12, 43, 24, 35 })
  T.eq(peak, 2)
end)

T.test("map: the first error cancels the siblings and is re-raised with its traceback", function()
  local finished = 0
  local err = T.err(function()
    llm.map({ 1, 2, 3, 4 }, function(x)
      if x == 2 then llm.sleep(0.01); error("item two failed") end
      llm.sleep(0.2)
      finished = finished + 1
    end, { concurrency = 4 })
  end, "item two failed")
  T.ok(tostring(err):find("task traceback", 1, true), "traceback appended")
  llm.sleep(0.25)
  T.eq(finished, 0, "siblings cancelled")
end)

T.test("map with errors=collect returns every error", function()
  local res, errs = llm.map({ 1, 2, 3 }, function(x)
    if x == 2 then error("two") end
    if x == 3 then return nil, "soft failure" end
    return x
  end, { errors = "collect" })
  T.eq(res[1], 1)
  T.eq(res[2], nil)
  T.ok(tostring(errs[2]):find("two", 1, true))
  T.eq(errs[3], "soft failure")
end)

T.test("map rejects bad arguments clearly", function()
  T.err(function() llm.map({}, 42) end, "function expected")
  T.err(function() llm.map("x", print) end, "table expected")
  T.err(function() llm.map({ 1 }, print, { concurrency = -1 }) end, "positive integer")
  T.err(function() llm.map({ 1 }, print, { concurrency = 1.5 }) end, "positive integer")
  T.err(function() llm.map({ 1 }, print, { errors = "ignore" }) end, "errors must be")
  T.eq(llm.map({}, print), {})
end)

T.test("parallel runs all functions at once", function()
  local running, peak = 0, 0
  local function job(v)
    return function()
      running = running + 1
      peak = math.max(peak, running)
      llm.sleep(0.02)
      running = running - 1
      return v
    end
  end
  local r = llm.parallel({ job("a"), job("b"), job("c") })
  T.eq(r, { "a", "b", "c" })
  T.eq(peak, 3)
end)

T.test("race returns the first truthy result and cancels the rest", function()
  local slow_done = false
  local v = llm.race({
    function() llm.sleep(0.2); slow_done = true; return "slow" end,
    function() llm.sleep(0.01); return nil, "fast failure" end,
    function() llm.sleep(0.03); return "fast" end,
  })
  T.eq(v, "fast")
  llm.sleep(0.2)
  T.eq(slow_done, false)
  local a, b = llm.race({ function() return nil, "e1" end, function() llm.sleep(0.01) return nil, "e2" end })
  T.eq({ a, b }, { nil, "e2" })
  T.err(function() llm.race({ function() error("all bad") end }) end, "all bad")
end)

T.test("with_timeout returns a timeout error and cancels the work", function()
  local finished = false
  local r, err = llm.with_timeout(0.02, function() llm.sleep(1); finished = true; return 1 end)
  T.eq(r, nil)
  T.eq(err.kind, "timeout")
  T.ok(tostring(err):find("timeout", 1, true))
  T.eq({ llm.with_timeout(1, function(a, b) return a + b, "x" end, 2, 3) }, { 5, "x" })
  T.err(function() llm.with_timeout(1, function() error("inner") end) end, "inner")
  T.eq(finished, false)
end)

T.test("with_timeout(math.huge) means no limit", function()
  T.eq({ llm.with_timeout(math.huge, function() llm.sleep(0.01) return 7 end) }, { 7 })
  -- a failed timer task would be reported as uncaught at exit
  local status, out, err = T.llmrun([[-e "print(llm.with_timeout(math.huge, function() return 1 end))"]])
  T.eq(out, "1\n")
  T.eq(err, "")
  T.eq(status, 0)
end)

T.test("semaphore bounds concurrency and survives cancelled waiters", function()
  local sem = llm.semaphore(2)
  local running, peak = 0, 0
  local tasks = {}
  for i = 1, 6 do
    tasks[i] = llm.spawn(function()
      sem:with(function()
        running = running + 1
        peak = math.max(peak, running)
        llm.sleep(0.01)
        running = running - 1
      end)
    end)
  end
  tasks[5]:cancel() -- waiting for a permit
  for i = 1, 6 do tasks[i]:wait() end
  T.eq(peak, 2)
  T.eq(sem:available(), 2)
end)

T.test("waiting works inside the user's own coroutines", function()
  local gen = coroutine.wrap(function()
    for i = 1, 3 do
      llm.sleep(0.001)
      coroutine.yield(i)
    end
  end)
  T.eq({ gen(), gen(), gen() }, { 1, 2, 3 })
  local co = coroutine.create(function(a) llm.sleep(0.001); local b = coroutine.yield(a + 1); return b * 2 end)
  T.eq({ coroutine.resume(co, 1) }, { true, 2 })
  T.eq({ coroutine.resume(co, 5) }, { true, 10 })
end)

T.test("waiting where Lua cannot yield raises a clear error", function()
  T.err(function() table.sort({ 3, 2, 1 }, function(a, b) llm.sleep(0) return a < b end) end,
    "cannot wait here")
  T.err(function() string.gsub("ab", "%w", function() llm.sleep(0) end) end, "cannot wait here")
  T.err(function()
    local t = setmetatable({}, { __tostring = function() llm.sleep(0) return "x" end })
    return tostring(t)
  end, "cannot wait here")
end)

T.test("a task that cancels itself stops there and ends cancelled", function()
  local after = false
  local t = llm.spawn(function()
    llm.current():cancel()
    after = true
  end)
  local ok, err = t:wait()
  T.eq(ok, false)
  T.eq(err.kind, "cancelled")
  T.eq(t:status(), "cancelled")
  T.eq(after, false)
end)

T.test("a child cancelling its waiting parent ends both", function()
  local parent, child
  parent = llm.spawn(function()
    child = llm.spawn(function()
      parent:cancel()
      llm.sleep(0) -- the cancel lands here
      error("not reached")
    end)
    llm.sleep(10)
  end)
  local ok, err = parent:wait()
  T.eq(ok, false)
  T.eq(err.kind, "cancelled")
  local cok, cerr = child:wait()
  T.eq(cok, false)
  T.eq(cerr.kind, "cancelled")
end)

T.test("a failing task closes its <close> variables", function()
  local closed_with
  local t = llm.spawn(function()
    local _ <close> = setmetatable({}, { __close = function(_, e) closed_with = e end })
    error("boom")
  end)
  local ok, err, tb = t:wait()
  T.eq(ok, false)
  T.ok(tostring(err):find("boom", 1, true))
  T.ok(tostring(closed_with):find("boom", 1, true), "__close ran with the error")
  T.ok(tb:find("stack traceback", 1, true))
end)

T.test("a task failing inside sem:with gives its permit back", function()
  local sem = llm.semaphore(1)
  local t = llm.spawn(function() sem:with(function() error("inside") end) end)
  T.eq((t:wait()), false)
  T.eq(sem:available(), 1)
end)

T.test("map: a failing progress callback fails the map instead of hanging it", function()
  T.err(function()
    llm.map({ 1, 2, 3 }, function(x) return x end,
      { concurrency = 2, on_progress = function() error("progress broke") end })
  end, "progress broke")
end)
