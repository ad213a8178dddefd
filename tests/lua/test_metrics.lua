-- Trackers and reports on hand-checkable data: calls are made through
-- llm.calls with a stand-in model, so every number is known in advance.
local T = ...
local calls = require "llm.calls"
local response = require "llm.response"
local cjson = require "cjson"

local SIM = { name = "gpt-4o-mini", provider = "sim", simulated = true }
local REAL = { name = "gpt-4o-mini", provider = "openai", simulated = false }

-- One finished call. o: latency, ttft, cost, usage {p, c, k}, tag, case,
-- err (kind), hit (cache kind), model, partial_text.
local function call(o)
  local c = calls.begin(o.model or REAL, "chat", {}, { tag = o.tag, case = o.case })
  if o.err then
    local partial
    if o.partial_text then
      partial = response.new { text = o.partial_text, usage = o.usage and {
        prompt_tokens = o.usage[1], completion_tokens = o.usage[2], cached_tokens = o.usage[3] or 0 },
        cost = o.cost, partial = true }
    end
    return calls.finish(c, nil, llm.error(o.err, "failed", { status = 503, retries = o.retries or 2 }), partial)
  end
  local u = o.usage or { 10, 5, 0 }
  return calls.finish(c, response.new {
    text = "ok", latency_ms = o.latency, ttft_ms = o.ttft, cost = o.cost, retries = o.retries or 0,
    usage = { prompt_tokens = u[1], completion_tokens = u[2], cached_tokens = u[3] or 0 },
    cached = o.hit or false,
  })
end

T.test("tracker: start/stop window, run, tags", function()
  local t = llm.metrics.tracker("window")
  call { latency = 1 }                    -- before start: not collected
  t:start()
  call { latency = 2 }
  call { latency = 3, tag = "x" }
  t:stop()
  call { latency = 4 }                    -- after stop
  T.eq(t:stats().calls, 2)
  local r1, r2 = t:run(function() call { latency = 5 } return "a", "b" end)
  T.eq({ r1, r2 }, { "a", "b" })
  T.eq(t:stats().calls, 3)
  T.err(function() t:run(function() error("inside") end) end, "inside")
  call { latency = 6 }
  T.eq(t:stats().calls, 3, "run stops even when fn raises")

  local tx = llm.metrics.tracker("tagged", { tag = "x" })
  local txy = llm.metrics.tracker("either", { tag = { "x", "y" } })
  call { latency = 1, tag = "x" }
  call { latency = 1, tag = "y" }
  call { latency = 1 }
  T.eq(tx:stats().calls, 1)
  T.eq(txy:stats().calls, 2)
  tx:stop(); txy:stop()
  call { latency = 1, tag = "x" }
  T.eq(tx:stats().calls, 1, "a stopped tag tracker collects nothing")
  T.err(function() llm.metrics.tracker(5) end, "string expected")
  T.err(function() llm.metrics.tracker("a", { tag = 3 }) end, "tag must be")
end)

T.test("tracker: stats by hand", function()
  local t = llm.metrics.tracker("hand", { tag = "hand" })
  for _, ms in ipairs { 100, 200, 300, 400 } do
    call { tag = "hand", latency = ms, ttft = ms / 4, cost = ms / 1e5, usage = { 10, 5, 2 } }
  end
  -- a hit carrying the original call's latency and cost: neither counts
  call { tag = "hand", latency = 5000, hit = "exact", cost = 0.5 }
  call { tag = "hand", err = "http" }                             -- failed, no usage: cost 0
  call { tag = "hand", latency = 900, cost = nil }                -- unknown cost
  local s = t:stats()
  T.eq(s.calls, 7)
  T.eq(s.ok, 6)
  T.eq(s.errors, 1)
  T.eq(s.hits, 1)
  T.near(s.error_rate, 1 / 7, 1e-12)
  T.near(s.hit_rate, 1 / 7, 1e-12)
  T.eq(s.retries, 2)
  -- latency over the 5 successful model calls: 100 200 300 400 900
  T.eq(s.latency.count, 5)
  T.eq(s.latency.p50, 300.0)     -- nearest rank: ceil(0.5 * 5) = 3rd
  T.eq(s.latency.p90, 900.0)
  T.eq(s.latency.min, 100.0)
  T.eq(s.latency.max, 900.0)
  T.near(s.latency.mean, 380, 1e-9)
  T.near(s.latency.stdev, math.sqrt(((280^2) + (180^2) + (80^2) + (20^2) + (520^2)) / 4), 1e-9)
  T.eq(s.latency.exact, true)
  T.eq(s.ttft.count, 4)
  T.eq(s.ttft.p50, 50.0)
  T.eq(s.lookup.count, 1)
  T.ok(s.lookup.p50 < 1000, "the lookup time is the hit's own, not the cached 5000 ms")
  -- tokens: 5 model calls with usage (the hit used none)
  T.eq(s.tokens, { prompt = 50, completion = 25, cached = 8, total = 75 })
  T.near(s.cost, 0.01, 1e-12)    -- 0.001+0.002+0.003+0.004, the hit and the failure 0
  T.eq(s.cost_unknown, 1)
  T.eq(s.simulated, nil)
  T.ok(s.wall_s and s.wall_s >= 0)
  t:stop()
end)

T.test("tracker: quality scores, simulated, reset", function()
  local t = llm.metrics.tracker("q", { tag = "q" })
  call { tag = "q", latency = 10, model = SIM }
  t:score(true, "a"):score(false, "b"):score(1, "c")
  local s = t:stats()
  T.eq(s.simulated, "all")
  T.near(s.quality.mean, 2 / 3, 1e-12)
  T.eq(s.quality.n, 3)
  T.ok(s.quality.lo <= s.quality.mean and s.quality.mean <= s.quality.hi)
  T.err(function() t:score("x") end, "number or boolean")
  -- its text: what print() prints
  call { tag = "q", latency = 30, ttft = 12, cost = 0.002, usage = { 1200, 40 } }
  local text = t:text()
  T.ok(text:find("^tracker q: 2 calls %(0 failed, 0 cache hits%), partly simulated\n"), text)
  T.ok(text:find("latency p50 10 ms, p95 30 ms; TTFT p50 12 ms", 1, true), text)
  T.ok(text:find("tokens 1,210 in + 45 out; cost $0.002000 (+ 1 call without a price)", 1, true), text)
  T.ok(text:find("accuracy 66.7%", 1, true), text)
  t:reset()
  T.eq(t:stats().calls, 0)
  T.eq(t:stats().quality, nil)
  t:stop()
end)

T.test("histogram: the C engine from Lua", function()
  local h = llm.metrics.hist()
  for i = 1, 100 do h:add(i) end
  T.eq(h:percentile(95), 95.0)
  T.eq(h:add(0 / 0), false)
  T.eq(h:add(-1), false)
  T.eq(h:summary().rejected, 2)
  T.eq(h:count(), 100)
  T.err(function() h:percentile(101) end, "[0, 100]")
  h:close(); h:close()
  T.err(function() h:add(1) end, "closed")
  T.ok(llm.metrics.error_bound <= 0.01)
end)

-- Two tag trackers over the same cases: after is exactly half as slow.
local function pair(n, opts)
  opts = opts or {}
  local a = llm.metrics.tracker("before", { tag = "b-" .. tostring(opts.id) })
  local b = llm.metrics.tracker("after", { tag = "a-" .. tostring(opts.id) })
  for i = 1, n do
    local case = opts.cases ~= false and ("c" .. i) or nil
    call { tag = "b-" .. tostring(opts.id), case = case, latency = 100, ttft = 40, cost = 0.002, usage = { 100, 20 } }
    call { tag = "a-" .. tostring(opts.id), case = case, latency = 50, ttft = 20, cost = 0.001, usage = { 50, 10 } }
  end
  a:stop(); b:stop()
  return a, b
end

T.test("compare: exact halves, paired, verdicts", function()
  local a, b = pair(20, { id = 1 })
  local r = llm.report.compare { before = a, after = b }
  T.eq(r.baseline, "before")
  T.eq(r.paired, true)
  T.eq(r.cases, 20)
  local lat = r:metric("latency_p50")
  T.eq(lat.values, { before = 100.0, after = 50.0 })
  T.eq(lat.vs.after.effect, 0.5)
  T.eq(lat.vs.after.lo, 0.5)
  T.eq(lat.vs.after.hi, 0.5)
  T.eq(lat.vs.after.verdict, "better")
  local cost = r:metric("cost")
  T.eq(cost.per, "total")
  T.near(cost.values.before, 0.04, 1e-12)
  T.near(cost.vs.after.effect, 0.5, 1e-12)
  T.eq(r:metric("tokens").values, { before = 2400, after = 1200 })
  local err = r:metric("error_rate")
  T.eq(err.vs.after.effect, 0)
  T.eq(err.vs.after.verdict, "no clear difference")
  T.eq(r.simulated, nil)
  -- the other way round: worse
  local r2 = llm.report.compare { variants = { b, a }, baseline = "after" }
  T.eq(r2:metric("latency_p50").vs.before.verdict, "worse")
  T.err(function() llm.report.compare { variants = { a, b }, baseline = "nope" } end, "no variant named")
  T.err(function() llm.report.compare { before = a } end, "both before= and after=")
  T.err(function() llm.report.compare(5) end, "table expected")
end)

T.test("compare: unpaired without case ids, per-call cost", function()
  local a, b = pair(10, { id = 2, cases = false })
  local r = llm.report.compare { before = a, after = b }
  T.eq(r.paired, nil)
  T.eq(r:metric("cost").per, "per call")
  T.near(r:metric("cost").values.before, 0.002, 1e-12)
end)

T.test("verdict rules", function()
  local lower = { mode = "ratio", better = "lower" }
  local higher = { mode = "diff", better = "higher" }
  local V = llm.report.verdict
  T.eq(V(lower, { effect = 0.5, lo = 0.4, hi = 0.6 }), "better")
  T.eq(V(lower, { effect = 1.5, lo = 1.2, hi = 1.8 }), "worse")
  T.eq(V(lower, { effect = 0.9, lo = 0.7, hi = 1.1 }), "no clear difference")
  T.eq(V(lower, { effect = 0.9 }), "not enough data")
  T.eq(V(lower, {}), "n/a")
  T.eq(V(higher, { effect = 0.1, lo = 0.05, hi = 0.2 }), "better")
  T.eq(V(higher, { effect = -0.1, lo = -0.2, hi = -0.05 }), "worse")
end)

T.test("compare: zero calls, all failed, one call", function()
  local empty = llm.metrics.tracker("empty", { tag = "nothing-ever" })
  local failed = llm.metrics.tracker("failed", { tag = "f" })
  local one = llm.metrics.tracker("one", { tag = "one" })
  for _ = 1, 5 do call { tag = "f", err = "http" } end
  call { tag = "one", latency = 80, cost = 0.001 }
  empty:stop(); failed:stop(); one:stop()
  local r = llm.report.compare { variants = { empty, failed, one } }
  T.eq(r:metric("latency_p50").values.empty, nil)
  T.eq(r:metric("latency_p50").vs.one.verdict, "n/a")
  T.eq(r:metric("error_rate").values.failed, 1.0)
  T.eq(r:metric("error_rate").vs.failed.verdict, "n/a") -- the baseline has no rate
  local notes = table.concat(r.notes, "\n")
  T.ok(notes:find("empty: no calls", 1, true), notes)
  T.ok(notes:find("failed: every call failed", 1, true), notes)
  local r2 = llm.report.compare { variants = { one, failed } }
  T.eq(r2:metric("error_rate").vs.failed.verdict, "not enough data")
  -- every output still works
  T.ok(r:text():find("llmrun report", 1, true))
  T.ok(cjson.decode(r:json()).variants)
  T.ok(r:html_string():find('id="chart-latency-cdf"', 1, true))
  T.ok(r:html_string():find("no data", 1, true))
end)

T.test("compare: NaN and huge values do not break anything", function()
  local t = llm.metrics.tracker("odd", { tag = "odd" })
  call { tag = "odd", latency = 0 / 0, ttft = math.huge, cost = 0 / 0 }
  call { tag = "odd", latency = 1e300, ttft = 1e300, cost = 1e300, usage = { 2^40, 2^40 } }
  call { tag = "odd", latency = -5 }
  call { tag = "odd", latency = 10 }
  t:stop()
  local s = t:stats()
  T.eq(s.calls, 4)
  T.eq(s.latency.count, 2)            -- NaN and -5 refused
  T.eq(s.latency.rejected, 2)
  T.eq(s.latency.max, 1e300)
  local r = llm.report.compare { variants = { t, t }, baseline = 1 }
  local doc = cjson.decode(r:json())
  T.ok(doc.metrics)
  T.ok(r:csv():find("odd", 1, true))
  T.ok(r:html_string():find("</html>", 1, true))
  T.ok(r:text())
end)

T.test("compare: accuracy and scores, quality by name and shapes", function()
  local a, b = pair(10, { id = 3 })
  local qa, qb = {}, {}
  for i = 1, 10 do
    qa[i] = { score = i <= 8, case = "c" .. i }
    qb[i] = { score = i <= 9, case = "c" .. i }
  end
  local r = llm.report.compare { before = a, after = b, quality = { before = qa, after = qb } }
  local q = r:metric("quality")
  T.eq(q.label, "accuracy")
  T.eq(q.unit, "%")
  T.near(q.values.before, 0.8, 1e-12)
  T.near(q.vs.after.effect, 0.1, 1e-12)
  T.ok(q.vs.after.paired)
  -- right/wrong samples get Wilson intervals: 8 of 10 -> [0.490, 0.943]
  T.near(q.ci.before.lo, 0.4902, 1e-3)
  T.near(q.ci.before.hi, 0.9433, 1e-3)
  T.ok(r:html_string():find('id="chart-quality"', 1, true))
  -- all right: the interval does not collapse to [1, 1]
  local all = {}
  for i = 1, 10 do all[i] = { score = true, case = "c" .. i } end
  local r3 = llm.report.compare { before = a, after = b, quality = { before = all, after = all } }
  T.near(r3:metric("quality").ci.before.lo, 0.7225, 1e-3)
  T.eq(r3:metric("quality").ci.before.hi, 1)
  local r2 = llm.report.compare { variants = {
    { name = "x", tracker = a, quality = { 0.5, 0.7, 0.9 } },
    { name = "y", tracker = b, quality = { 0.6, 0.8, 1.0 } } } }
  T.eq(r2:metric("quality").label, "quality")
  T.near(r2:metric("quality").vs.y.effect, 0.1, 1e-12)
  T.err(function()
    llm.report.compare { variants = { { name = "x", tracker = a, quality = { "bad" } }, b } }
  end, "not a number")
end)

T.test("report outputs: JSON, CSV, Markdown, HTML, text", function()
  local a, b = pair(12, { id = 4 })
  local r = llm.report.compare { before = a, after = b, title = "outputs" }
  local doc = cjson.decode(r:json())
  T.eq(doc.title, "outputs")
  T.eq(doc.baseline, "before")
  T.eq(#doc.variants, 2)
  T.eq(doc.settings, { reps = 1000, seed = llm.report.DEFAULT_SEED, level = 0.95 })
  T.eq(r:json(), llm.report.compare { before = a, after = b, title = "outputs" }:json(), "reproducible")
  local lines = {}
  for line in r:csv():gmatch("([^\r\n]*)\r\n") do lines[#lines + 1] = line end
  T.eq(lines[1], "metric,label,unit,variant,value,ci_lo,ci_hi,baseline,effect,effect_lo,effect_hi,mode,verdict")
  T.eq(#lines, 1 + #r.metrics * 2)
  for i = 2, #lines do
    local n = select(2, lines[i]:gsub(",", ",")) + 1
    T.eq(n, 13, "columns in line " .. i)
  end
  local md = r:markdown()
  T.ok(md:find("| metric | before | after | after vs before | verdict |", 1, true), md)
  local html = r:html_string()
  for _, id in ipairs { "chart-latency-cdf", "chart-ttft-hist", "chart-cost", "chart-tokens" } do
    T.ok(html:find('<svg id="' .. id .. '"', 1, true), id)
  end
  T.ok(not html:find("<script", 1, true))
  T.ok(not html:find("SIMULATED", 1, true))
  local path = os.tmpname()
  T.eq(r:html(path), path)
  local f = io.open(path); local written = f:read("a"); f:close(); os.remove(path)
  T.eq(written, html)
  T.eq(r:html("/nonexistent-dir/x.html"), nil)
  T.err(function() r:html() end, "file path expected")
  local text = r:text()
  T.ok(not text:find("\27[", 1, true), "no colour unless asked")
  T.ok(r:text { color = true }:find("\27[32m", 1, true))
  T.ok(text:find("█", 1, true), "bar charts")
end)

T.test("reports of simulated runs say so at the top", function()
  local a = llm.metrics.tracker("s1", { tag = "s1" })
  local b = llm.metrics.tracker("s2", { tag = "s2" })
  call { tag = "s1", latency = 10, model = SIM }
  call { tag = "s2", latency = 10, model = REAL }
  a:stop(); b:stop()
  local all = llm.report.compare { variants = { a, a } }
  T.eq(all.simulated, "all")
  T.ok(all:text():match("^llmrun report[^\n]*\nSIMULATED"))
  T.ok(all:markdown():find("**SIMULATED", 1, true))
  T.ok(all:html_string():find('id="simulated"', 1, true))
  T.eq(cjson.decode(all:json()).simulated, "all")
  local some = llm.report.compare { variants = { a, b } }
  T.eq(some.simulated, "some")
  T.ok(some:text():find("PARTLY SIMULATED", 1, true))
end)
