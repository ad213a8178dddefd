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
  local both, peak_both = 0, 0
  local function v(name)
    return function()
      active[name] = active[name] + 1
      both = both + 1
      peak[name] = math.max(peak[name], active[name])
      peak_both = math.max(peak_both, both)
      llm.sleep(0.005)
      active[name] = active[name] - 1
      both = both - 1
      return { ok = true }
    end
  end
  llm.experiment { cases = cases_n(8), concurrency = 8, progress = false,
    variants = { { name = "a", run = v("a"), concurrency = 2 }, { name = "b", run = v("b") } } }
  T.eq(peak.a, 2, "variant a's concurrency caps it")
  T.ok(peak.b > 2, "variant b runs wider: " .. peak.b)
  -- counted, not timed: a wall-time bound fails on a loaded machine
  T.ok(peak_both > peak.b, "units of both variants overlapped: " .. peak_both)
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

T.test("checks give reasons; cmp:cases() shows every case side by side, with filters", function()
  local list = {}
  for i = 1, 4 do list[i] = { id = "k" .. i, question = "What is " .. i .. " + 1?", answer = tostring(i + 1) } end
  local cmp = llm.experiment {
    cases = list, progress = false,
    variants = {
      { name = "right", run = function(c) return { text = c.answer, cost = 1 } end },
      { name = "mostly", run = function(c)
          if c.id == "k3" then error("no answer for k3") end
          return { text = c.id == "k2" and "9" or c.answer }
        end },
    },
    check = llm.check.equals(),
  }
  local rows = cmp:cases()
  T.eq(#rows, 4)
  T.eq(rows.order, { "right", "mostly" })
  local r1, r2, r3 = rows[1], rows[2], rows[3]
  T.eq({ r1.id, r1.input, r1.expected }, { "k1", "What is 1 + 1?", "2" })
  T.eq(r1.variants.right.output, "2")
  T.eq(r1.variants.right.pass, true)
  T.eq({ r1.failed, r1.disagree }, { false, false })
  T.eq(r2.variants.mostly.pass, false)
  T.eq(r2.variants.mostly.reason, 'got "9", expected "3"')
  T.eq({ r2.failed, r2.disagree }, { true, true })
  T.ok(r3.variants.mostly.error:find("no answer for k3", 1, true))
  T.ok(r3.variants.mostly.latency_ms >= 0)
  T.eq(#rows:filter { failures = true }, 2)
  T.eq(#rows:filter { disagreements = true }, 2)
  local text = rows:text { failures = true }
  T.ok(text:find("case k2  [failed, variants disagree]", 1, true), text)
  T.ok(text:find('FAIL  "9"', 1, true), text)
  T.ok(text:find('got "9", expected "3"', 1, true), text)
  T.ok(text:find("ERROR", 1, true), text)
  T.ok(not text:find("case k1", 1, true), "filtered out: " .. text)
  local data = require("cjson").decode(rows:json())
  T.eq(#data, 4)
  T.eq(data[2].variants.mostly.reason, 'got "9", expected "3"')
  -- a user's check may return a reason too, and a score
  local cmp2 = llm.experiment { cases = list, progress = false, pass_score = 0.75,
    variants = { v = function(c) return { text = c.answer } end },
    check = function(c) return tonumber(c.answer) / 5, "scored " .. c.answer end }
  local rs = cmp2:cases()
  T.eq(rs[4].variants.v.reason, "scored 5")
  T.eq(rs[4].variants.v.pass, true)
  T.eq(rs[3].variants.v.pass, true, "0.8 passes at 0.75")
  T.eq(rs[2].variants.v.pass, false, "0.6 does not")
  T.near(cmp2:stats("v").quality.mean, (2 + 3 + 4 + 5) / 20, 1e-9, "quality is the score itself")
end)

T.test("expected and input options: what the per-case view and llm.check read", function()
  local cmp = llm.experiment {
    cases = { { id = "a", text_in = "hello", gold = "HI" } }, progress = false,
    expected = "gold", input = function(c) return "says " .. c.text_in end,
    variants = { v = function() return { text = "hi" } end },
    check = llm.check.equals(),
  }
  local row = cmp:cases()[1]
  T.eq({ row.input, row.expected }, { "says hello", "HI" })
  T.eq(row.variants.v.pass, true, "the check compared with the experiment's expected field")
  T.err(function() llm.experiment { cases = {}, variants = { a = print }, expected = 3 } end, "expected must be")
end)

T.test("repeats: pass@k, pass^k and flaky cases, per case with intervals", function()
  -- case i passes in run r when (i + r) is not divisible by 3 for "flaky";
  -- "steady" always passes cases 1-4 and fails 5-6
  local runs = {}
  local list = cases_n(6)
  local cmp = llm.experiment {
    cases = list, repeats = 3, progress = false,
    variants = {
      { name = "steady", run = function(c) return { ok = c.x <= 4 } end },
      { name = "flaky", run = function(c)
          runs[c.id] = (runs[c.id] or 0) + 1
          return { ok = (c.x + runs[c.id]) % 3 ~= 0 }
        end },
    },
  }
  local at, all, flaky = cmp:metric("pass_at_k"), cmp:metric("pass_all_k"), cmp:metric("flaky")
  T.eq(at.label, "pass@3")
  T.near(at.values.steady, 4 / 6, 1e-9)
  T.near(all.values.steady, 4 / 6, 1e-9)
  T.near(flaky.values.steady, 0, 1e-9)
  -- flaky: every case fails exactly one of its three runs
  T.near(at.values.flaky, 1, 1e-9)
  T.near(all.values.flaky, 0, 1e-9)
  T.near(flaky.values.flaky, 1, 1e-9)
  T.ok(at.vs.flaky.lo ~= nil, "an interval over cases")
  T.ok(note_matching(cmp, "flaky: 6 of 6 cases flaky"), "a note names them")
  T.ok(note_matching(cmp, "steady: 0 of 6 cases flaky"))
  local row = cmp:cases()[1]
  T.eq({ row.variants.flaky.passes, row.variants.flaky.runs, row.flaky }, { 2, 3, true })
  T.ok(cmp:cases():text():find("2/3", 1, true))
  -- pass_k below repeats: the unbiased estimator
  local est = require "llm.experiment_cases"
  T.near(est.pass_at_k(3, 2, 1), 2 / 3, 1e-12)
  T.near(est.pass_at_k(5, 1, 2), 1 - (4 * 3) / (5 * 4), 1e-12)
  T.near(est.pass_all_k(5, 3, 2), (3 * 2) / (5 * 4), 1e-12)
  T.eq(est.pass_all_k(5, 1, 2), 0)
  local cmp2 = llm.experiment { cases = cases_n(2), repeats = 4, pass_k = 2, progress = false,
    variants = { v = function(c) runs[c.id .. "b"] = (runs[c.id .. "b"] or 0) + 1
      return { ok = runs[c.id .. "b"] == 1 } end } }
  T.near(cmp2:metric("pass_at_k").values.v, 0.5, 1e-12, "1 pass in 4 runs: pass@2 = 1 - C(3,2)/C(4,2)")
  T.eq(cmp2:metric("pass_at_k").label, "pass@2")
  T.err(function() llm.experiment { cases = {}, variants = { a = print }, repeats = 2, pass_k = 3 } end,
    "pass_k (3) must not exceed repeats (2)")
  -- no repeats: no such rows
  T.eq(llm.experiment { cases = cases_n(2), progress = false,
    variants = { v = function() return { ok = true } end } }:metric("pass_at_k"), nil)
end)

T.test("a judge's calls are tagged judge:<variant> and costed apart from the variant", function()
  local judge_model = sim("gpt-4o")
  local seen = {}
  local function spy(call) seen[#seen + 1] = call.tag end
  calls.on_finish(spy)
  local m = sim("gpt-4o-mini")
  -- a stand-in judge: one real model call per case, then a verdict
  local function judged(case, resp)
    local r = assert(judge_model:chat("Compute " .. case.x .. " + 100."))
    return resp.text ~= nil, "graded with " .. r.model
  end
  local cmp = llm.experiment {
    cases = cases_n(3), progress = false, tags = { b = "tag-b" },
    variants = { a = function(c) return m:chat("Compute " .. c.x .. " + 1.") end,
                 b = function(c) return m:chat("Compute " .. c.x .. " + 2.") end },
    check = judged,
  }
  calls.off(spy)
  local count = {}
  for _, t in ipairs(seen) do count[t] = (count[t] or 0) + 1 end
  T.eq(count, { a = 3, ["tag-b"] = 3, ["judge:a"] = 3, ["judge:tag-b"] = 3 })
  local row = cmp:metric("check_cost")
  T.ok(row, "a judge cost row")
  T.ok(row.values.a > 0)
  local mini_only = cmp:stats("a").cost
  T.ok(row.values.a > mini_only, "gpt-4o judging costs more than the gpt-4o-mini answers: the costs are apart")
  T.ok(note_matching(cmp, "a: its checks made 3 model calls (tag judge:a)"))
  T.ok(cmp:cases()[1].variants.a.check_cost > 0)
  T.eq(cmp:cases()[1].variants.a.reason, "graded with gpt-4o")
  -- checks that make no calls add no such row
  T.eq(llm.experiment { cases = cases_n(1), progress = false, variants = { v = function() return "x" end },
    check = function() return true end }:metric("check_cost"), nil)
end)
