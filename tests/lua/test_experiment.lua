-- llm.experiment: modes, ordering, errors, checks, per-case accounting and
-- the call log, against stand-in variants and the simulator (zero profile).
local T = ...
local calls = require "llm.calls"

local H = { ["x-sim-profile"] = "zero" }
local function sim(name) return llm.model { name = name, headers = H } end

local function cases_n(n)
  local list = {}
  for i = 1, n do list[i] = { id = "c" .. i, x = i } end
  return list
end

local function note_matching(cmp, pattern)
  for _, n in ipairs(cmp.report.notes) do
    if n:find(pattern, 1, true) then return n end
  end
end

T.test("interleaved: every variant on every case, order rotated per case", function()
  local order = {}
  local function v(name) return function(case) order[#order + 1] = name .. case.x return { ok = true } end end
  local cmp = llm.experiment {
    cases = cases_n(3), progress = false,
    variants = { { name = "a", run = v("a") }, { name = "b", run = v("b") }, { name = "c", run = v("c") } },
  }
  T.eq(order, { "a1", "b1", "c1", "b2", "c2", "a2", "c3", "a3", "b3" })
  T.eq(cmp.mode, "interleaved")
  T.eq(cmp:stats("a").calls, 3, "one row per case")
  T.eq(cmp.report.count_label, "cases")
  T.eq(cmp.report.baseline, "a", "a list's first variant is the baseline")
  -- repeats rotate too, and keep pairing by case
  order = {}
  llm.experiment { cases = cases_n(2), repeats = 2, progress = false,
    variants = { { name = "a", run = v("a") }, { name = "b", run = v("b") } } }
  T.eq(order, { "a1", "b1", "b2", "a2", "b1", "a1", "a2", "b2" })
end)

T.test("interleaved with concurrency: units overlap, a variant's own limit holds", function()
  local active, peak = { a = 0, b = 0 }, { a = 0, b = 0 }
  local function v(name)
    return function()
      active[name] = active[name] + 1
      peak[name] = math.max(peak[name], active[name])
      llm.sleep(0.005)
      active[name] = active[name] - 1
      return { ok = true }
    end
  end
  local t0 = llm.now()
  llm.experiment { cases = cases_n(8), concurrency = 8, progress = false,
    variants = { { name = "a", run = v("a"), concurrency = 2 }, { name = "b", run = v("b") } } }
  T.eq(peak.a, 2, "variant a's concurrency caps it")
  T.ok(peak.b > 2, "variant b runs wider: " .. peak.b)
  T.ok(llm.now() - t0 < 16 * 0.005, "units overlapped")
end)

T.test("blocks: each variant over all cases at its own concurrency; wall time with an interval", function()
  local order, active, peak = {}, 0, 0
  local function run(case)
    order[#order + 1] = case.x
    active = active + 1
    peak = math.max(peak, active)
    llm.sleep(0.01)
    active = active - 1
    return { ok = true }
  end
  local seen = {}
  local cmp = llm.experiment {
    cases = cases_n(8), mode = "blocks", batches = 2, progress = false,
    variants = {
      { name = "sequential", run = function(c) seen[#seen + 1] = "s" return run(c) end },
      { name = "parallel", run = function(c) seen[#seen + 1] = "p" return run(c) end, concurrency = 4 },
    },
  }
  -- batch 1: sequential then parallel; batch 2: parallel first (rotated)
  T.eq(table.concat(seen), "ssss" .. "pppp" .. "pppp" .. "ssss", "one variant at a time")
  T.eq(peak, 4)
  local wall = cmp:metric("wall")
  T.ok(wall, "a wall time row")
  local ws, wp = wall.values.sequential, wall.values.parallel
  T.ok(ws >= 8 * 0.01 * 0.9, "sequential wall ~ 8 x 10 ms, got " .. ws)
  T.ok(wp < ws / 2, "parallel is faster: " .. wp .. " vs " .. ws)
  local vs = wall.vs.parallel
  T.ok(vs.lo and vs.hi and vs.hi < 1, "an interval from the batches, below 1")
  T.eq(#cmp.variants.parallel.walls, 2)
  T.ok(note_matching(cmp, "blocks mode in 2 batches"))
end)

T.test("variant errors are counted per variant and never abort the run", function()
  local cmp = llm.experiment {
    cases = cases_n(6), progress = false,
    variants = {
      { name = "good", run = function() return { ok = true } end },
      { name = "bad", run = function(case)
          if case.x == 2 then error("boom " .. case.id) end
          if case.x == 4 then return nil, llm.error("http", "refused", { status = 503 }) end
          if case.x == 6 then return { error = "gave up" } end
          return { ok = true }
        end },
    },
  }
  local bad, good = cmp:stats("bad"), cmp:stats("good")
  T.eq(bad.calls, 6)
  T.eq(bad.errors, 3)
  T.eq(good.errors, 0)
  T.near(bad.quality.mean, 0.5, 1e-9, "a failed case scores 0 by default")
  T.eq(#cmp.variants.bad.errors, 3)
  local msgs = {}
  for _, e in ipairs(cmp.variants.bad.errors) do msgs[e.case] = e.message end
  T.ok(msgs.c2:find("boom c2", 1, true))
  T.eq(msgs.c4, "http HTTP 503: refused", "an llm.error prints as itself")
  T.eq(msgs.c6, "gave up")
  T.ok(note_matching(cmp, "bad: 3 of 6 cases failed (first: case c2"), "the report says so")
  T.ok(cmp:text():find("6 (3 failed)", 1, true))
  T.near(cmp:metric("error_rate").values.bad, 0.5, 1e-9)
  -- error_score = false leaves failed cases out of quality
  local cmp2 = llm.experiment { cases = cases_n(4), error_score = false, progress = false,
    variants = { only = function(c) if c.x > 2 then error("x") end return { ok = true } end } }
  T.eq(cmp2:stats("only").quality.mean, 1)
  T.eq(cmp2:stats("only").quality.n, 2)
end)

T.test("a checker that throws: the case leaves quality, the report says why", function()
  local cmp = llm.experiment {
    cases = cases_n(5), progress = false,
    variants = { v = function(case) return { text = tostring(case.x) } end },
    check = function(case, resp)
      if case.x == 3 then error("checker bug") end
      if case.x == 5 then return "yes" end
      return resp.text == "1" or resp.text == "2"
    end,
  }
  local q = cmp:stats("v").quality
  T.eq(q.n, 3, "cases 3 (raised) and 5 (not a boolean) are left out")
  T.near(q.mean, 2 / 3, 1e-9)
  T.eq(#cmp.variants.v.check_errors, 2)
  T.ok(note_matching(cmp, "v: check failed on 2 cases, left out of quality (first: case c3"))
  T.eq(cmp:stats("v").errors, 0, "a checker's bug is not the variant's error")
end)

T.test("quality from result tables: ok and score; none at all", function()
  local cmp = llm.experiment { cases = cases_n(4), progress = false, variants = {
    scored = function(c) return { score = c.x / 4 } end,
    judged = function(c) return { ok = c.x % 2 == 0 } end,
  } }
  T.near(cmp:stats("scored").quality.mean, (1 + 2 + 3 + 4) / 16, 1e-9)
  T.near(cmp:stats("judged").quality.mean, 0.5, 1e-9)
  local plain = llm.experiment { cases = cases_n(2), progress = false,
    variants = { p = function() return "text" end } }
  T.eq(plain:stats("p").quality, nil, "no check, no scores: no quality row")
  T.eq(plain:metric("quality"), nil)
end)

T.test("empty case lists: a clear note and an empty report in every format", function()
  local cmp = llm.experiment { cases = {}, variants = { a = function() end, b = function() end } }
  T.eq(cmp.ncases, 0)
  T.ok(note_matching(cmp, "no cases"))
  T.ok(cmp:text():find("no cases", 1, true))
  T.ok(cmp:markdown():find("no cases", 1, true))
  T.ok(cmp:json():find("no cases", 1, true))
  T.ok(cmp:csv())
  local path = os.tmpname()
  T.ok(cmp:html(path))
  os.remove(path)
  -- and the message on stderr
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write("llm.experiment { cases = {}, variants = { a = function() end } }:print()\n")
  f:close()
  local status, out, err = T.llmrun(script)
  os.remove(script)
  T.eq(status, 0)
  T.ok(err:find("no cases to run", 1, true), err)
  T.ok(out:find("no cases", 1, true), out)
end)

T.test("misuse raises at the caller", function()
  T.err(function() llm.experiment() end, "table expected")
  T.err(function() llm.experiment { variants = { a = print } } end, "cases is nil")
  T.err(function() llm.experiment { cases = {}, variants = {} } end, "no variants")
  T.err(function() llm.experiment { cases = {}, variants = { a = 5 } } end, "variant a must be")
  T.err(function() llm.experiment { cases = {}, variants = { a = print }, mode = "x" } end, "mode must be")
  T.err(function() llm.experiment { cases = {}, variants = { a = print }, repeats = 0 } end, "repeats must be")
  T.err(function() llm.experiment { cases = {}, variants = { a = print }, baseline = "z" } end, "baseline names")
  local e = T.err(function() llm.experiment { cases = 3, variants = { a = print } } end, "cases must be")
  T.ok(tostring(e):find("test_experiment.lua", 1, true), "points at the caller: " .. tostring(e))
end)

T.test("per-case accounting on the simulator: latency end to end, cost and calls summed", function()
  local m = sim("gpt-4o-mini")
  local costs = {}
  local cmp = llm.experiment {
    cases = cases_n(4), progress = false,
    variants = {
      one = function(c) return m:chat("Compute " .. c.x .. " + 1.") end,
      two = function(c)
        local a = assert(m:chat("Compute " .. c.x .. " + 2."))
        llm.sleep(0.02)
        local b = assert(m:chat("Compute " .. c.x .. " + 3."))
        costs[c.id] = a.cost + b.cost
        return b
      end,
    },
    check = function(c, r) return r.text == tostring(c.x + 1) or r.text == tostring(c.x + 3) end,
  }
  local two = cmp:stats("two")
  T.eq(two.calls, 4)
  local sum = 0
  for _, v in pairs(costs) do sum = sum + v end
  T.near(two.cost, sum, 1e-12, "a case's cost is the sum over its calls")
  T.ok(two.latency.p50 >= 20, "latency includes the variant's own time: " .. two.latency.p50)
  T.near(cmp:metric("model_calls").values.two, 2, 1e-9)
  T.near(cmp:metric("model_calls").values.one, 1, 1e-9)
  T.eq(cmp.simulated, "all")
  T.ok(cmp:text():find("SIMULATED", 1, true))
  T.ok(note_matching(cmp, "two: 8 model calls, 0 cache hits (gpt-4o-mini 8)"))
  -- TTFT of a case: from its start to the first token of its first call
  T.ok(two.ttft.p50 < two.latency.p50)
end)

T.test("cache hits: a case answered without a model call counts as answered from cache", function()
  local m = sim("gpt-4o-mini")
  local hit = function(call)
    if call.case == "c2" then
      return require("llm.response").new { text = "cached", cached = "exact", lookup_ms = 0.1 }
    end
  end
  calls.on_before(hit, 10)
  local cmp = llm.experiment { cases = cases_n(2), progress = false,
    variants = { v = function(c) return m:chat("Compute " .. c.x .. " * 2.") end } }
  calls.off(hit)
  T.near(cmp:metric("hit_rate").values.v, 0.5, 1e-9)
  T.eq(cmp.variants.v.hits, 1)
  T.eq(cmp:stats("v").latency.count, 2, "a hit's end-to-end time is a latency sample too")
  T.near(cmp:metric("model_calls").values.v, 0.5, 1e-9)
end)

T.test("tags reach the call log: variant name, case id, nested tasks, warm-up", function()
  local db = os.tmpname()
  os.remove(db)
  llm.log.use(db)
  local m = sim("gpt-4o-mini")
  llm.experiment {
    cases = cases_n(3), warmup = 1, progress = false,
    tags = { fast = "exp-fast" },
    variants = {
      slow = function(c) return m:chat("Compute " .. c.x .. " + 5.") end,
      fast = function(c)
        -- two calls in tasks of their own: the tag follows them
        local rs = llm.map({ 1, 2 }, function(k) return m:chat(("Compute %d * %d."):format(c.x, k)) end)
        return rs[2]
      end,
    },
  }
  m:chat("Compute 1 + 1.") -- outside: untagged
  T.ok(llm.log.flush())
  local reader = assert(llm.log.reader(db))
  local rows = reader:calls(llm.log.run_id(), 0)
  reader:close()
  local count = {}
  for _, row in ipairs(rows) do
    local key = tostring(row.tag) .. "/" .. tostring(row.case)
    count[key] = (count[key] or 0) + 1
  end
  T.eq(count, {
    ["slow:warmup/c1"] = 1, ["exp-fast:warmup/c1"] = 2,
    ["slow/c1"] = 1, ["slow/c2"] = 1, ["slow/c3"] = 1,
    ["exp-fast/c1"] = 2, ["exp-fast/c2"] = 2, ["exp-fast/c3"] = 2,
    ["nil/nil"] = 1,
  })
  os.remove(db)
end)

T.test("timeout: a case that takes too long is an error of that case", function()
  local cmp = llm.experiment { cases = cases_n(3), timeout = 0.02, progress = false,
    variants = { v = function(c) if c.x == 2 then llm.sleep(1) end return { ok = true } end } }
  T.eq(cmp:stats("v").errors, 1)
  T.ok(cmp.variants.v.errors[1].message:find("timed out", 1, true))
end)

T.test("reports: every format carries the variants and the intervals", function()
  local cmp = llm.experiment { cases = cases_n(10), progress = false, title = "formats",
    variants = { a = function(c) return { score = c.x } end, b = function(c) return { score = c.x + 1 } end } }
  T.ok(cmp:markdown():find("| cases |", 1, true))
  local data = require("cjson").decode(cmp:json())
  T.eq(data.title, "formats")
  T.eq(data.count_label, "cases")
  T.ok(cmp:csv():find("quality", 1, true))
  local html = cmp:html_string()
  T.ok(html:find("<td>cases</td>", 1, true))
  T.ok(html:find("per case, end to end", 1, true), "the charts say what a latency is here")
  T.ok(not html:find("cache hits excluded", 1, true))
  T.eq(tostring(cmp), cmp:text { color = false })
  local lines = {}
  for l in cmp:summary { "quality", "cost" }:gmatch("[^\n]+") do lines[#lines + 1] = l end
  T.eq(#lines, 3, "a header and one line per variant")
  T.ok(lines[1]:find("^variant%s+quality%s+cost"), lines[1])
  T.ok(lines[2]:find("^a%s+5%.5 %[[%d.]+, [%d.]+%]"), lines[2])
  local q = cmp:metric("quality").vs.b
  T.near(q.effect, 1, 1e-9)
  T.ok(q.paired, "paired by case")
end)
