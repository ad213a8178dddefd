-- llm.route: cheapest (constraints and rejection reasons), fallback on
-- injected simulator faults, cascades (escalation counting, costs, a
-- throwing checker, logprob confidence), by_length and custom routers,
-- and the threshold sweep's frontier on simulator cases (zero latency,
-- deterministic: the simulator's answers depend only on the request).
local T = ...
local R = llm.route
local pricing = llm.pricing
local cjson = require "cjson"

local zero = { ["x-sim-profile"] = "zero" }
local function sim(name, extra)
  local h = { ["x-sim-profile"] = "zero" }
  for k, v in pairs(extra or {}) do h[k] = v end
  return llm.model { name = name, headers = h, max_retries = 0 }
end

local function arithmetic(n)
  local out = {}
  local dir = os.getenv("LLMRUN_SOURCE_DIR") or "."
  for line in io.lines(dir .. "/examples/data/arithmetic.jsonl") do
    out[#out + 1] = cjson.decode(line)
    if #out == n then break end
  end
  return out
end

local function ask(c)
  return { messages = { { role = "system", content = "Answer with the number only." },
                        { role = "user", content = c.question } } }
end

-- ---- cheapest ------------------------------------------------------------------------------

T.test("cheapest: the price table decides; every candidate with its estimate", function()
  local m, cands = R.cheapest({ "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4" },
    { prompt_tokens = 2000, completion_tokens = 500 })
  T.eq(m, "gpt-4o-mini")
  T.eq(#cands, 4)
  for i, c in ipairs(cands) do
    T.eq(c.cost, pricing.estimate(c.name, 2000, 500), c.name)
    if i > 1 then T.ok(cands[i - 1].cost <= c.cost, "cheapest first") end
  end
  T.eq(cands[1].name, "gpt-4o-mini")
  T.eq(cands[4].name, "gpt-4")
  for _, c in ipairs(cands) do T.ok(c.ok) T.eq(c.reasons, {}) end
  -- defaults: 1000 prompt, 250 completion tokens
  local _, d = R.cheapest({ "gpt-4o" })
  T.eq(d[1].cost, pricing.estimate("gpt-4o", 1000, 250))
  -- the prompt counted from a request
  local req = { messages = { { role = "user", content = "hello there" } } }
  local _, e = R.cheapest({ "gpt-4o" }, { request = req })
  T.eq(e[1].cost, pricing.estimate("gpt-4o", llm.tokens.request(req), 250))
end)

T.test("cheapest: max_cost, min_context and latency constraints with reasons", function()
  pricing.set("test-route-small", { input = 1e-7, output = 4e-7, max_input_tokens = 8000 })
  pricing.set("test-route-big", { input = 2e-6, output = 8e-6, max_input_tokens = 128000 })
  pricing.set("test-route-nowindow", { input = 1e-8, output = 1e-8 })
  local models = { "test-route-big", "test-route-small", "test-route-nowindow", "test-route-unpriced" }
  local m, cands = R.cheapest(models, { min_context = 16000 })
  T.eq(m, "test-route-big")
  local by = {}
  for _, c in ipairs(cands) do by[c.name] = c end
  T.eq(by["test-route-small"].reasons, { "context window 8000 < 16000 tokens needed" })
  T.eq(by["test-route-nowindow"].reasons, { "context window unknown" })
  T.eq(by["test-route-unpriced"].reasons, { "no price known", "context window unknown" })
  T.eq(cands[#cands].name, "test-route-unpriced") -- unknown cost sorts last
  -- allow_unknown lets the unknown window pass
  T.eq((R.cheapest(models, { min_context = 16000, allow_unknown = true })), "test-route-nowindow")
  -- a prompt that does not fit is a context constraint too
  T.eq((R.cheapest({ "test-route-small", "test-route-big" }, { prompt_tokens = 9000 })), "test-route-big")
  local long = { messages = { { role = "user", content = ("word "):rep(8500) } } }
  T.eq((R.cheapest({ "test-route-small", "test-route-big" }, { request = long })), "test-route-big")
  T.eq((R.cheapest({ "test-route-small", "test-route-big" })), "test-route-small")
  -- max_cost: nothing qualifies -> nil and the reasons
  local none, c2 = R.cheapest({ "test-route-big" }, { max_cost = 1e-6 })
  T.eq(none, nil)
  T.ok(c2[1].reasons[1]:find("> max_cost", 1, true), c2[1].reasons[1])
  T.eq(c2[1].ok, false)
  -- latency: given numbers and trackers
  local lat = { ["test-route-small"] = 5000, ["test-route-big"] = 400 }
  m, cands = R.cheapest({ "test-route-small", "test-route-big" }, { max_latency_ms = 1000, latency = lat })
  T.eq(m, "test-route-big")
  T.ok(cands[1].reasons[1]:find("latency 5000 ms (given) > max_latency_ms 1000", 1, true), cands[1].reasons[1])
  local fake = { stats = function() return { latency = { p50 = 300, p95 = 2500 } } end }
  T.eq((R.cheapest({ "test-route-small" }, { max_latency_ms = 1000, trackers = { ["test-route-small"] = fake } })),
    "test-route-small")
  T.eq((R.cheapest({ "test-route-small" }, { max_latency_ms = 1000, latency_stat = "p95",
    trackers = { ["test-route-small"] = fake } })), nil)
  -- a real (not simulated) model with no measurement: unknown latency
  local real = { name = "test-route-small", chat = function() end, simulated = false }
  local r, c3 = R.cheapest({ real }, { max_latency_ms = 1000 })
  T.eq(r, nil)
  T.eq(c3[1].reasons, { "latency unknown" })
  T.eq((R.cheapest({ real }, { max_latency_ms = 1000, allow_unknown = true })), real)
  for _, n in ipairs { "test-route-small", "test-route-big", "test-route-nowindow" } do pricing.set(n, nil) end
end)

T.test("cheapest: simulated models' latency from the simulator's profiles", function()
  local p = require("llm.sim_profiles").lookup("gpt-4o-mini")
  local mini = llm.model "gpt-4o-mini"
  local _, cands = R.cheapest({ mini }, { prompt_tokens = 3000, completion_tokens = 100 })
  local want = p.ttft * 1000 + p.prefill_per_1k * 1000 * 2 + 100 / p.tps * 1000
  T.near(cands[1].latency_ms, want, 1e-6)
  T.eq(cands[1].latency_source, "simulator profile")
  T.eq(cands[1].model, mini)
  -- the zero profile: no latency at all
  local _, z = R.cheapest({ sim("gpt-4o") })
  T.eq(z[1].latency_ms, 0)
  -- a tight latency bound rejects the profile's estimate
  local m = R.cheapest({ mini, sim("gpt-4o") }, { max_latency_ms = 100 })
  T.eq(m.name, "gpt-4o")
end)

T.test("cheapest: misuse", function()
  T.err(function() R.cheapest({}) end, "non-empty list")
  T.err(function() R.cheapest({ "gpt-4o" }, { max_cots = 1 }) end, "unknown option 'max_cots'")
  T.err(function() R.cheapest({ "gpt-4o" }, { max_cost = "1" }) end, "must be a number")
  T.err(function() R.cheapest({ 42 }) end, "models[1]")
end)

-- ---- logprobs on responses -----------------------------------------------------------------------

T.test("responses carry logprobs when asked (chat and stream)", function()
  local m = sim("gpt-4o-mini")
  local r = assert(m:chat { messages = { { role = "user", content = "What is 12 + 30?" } }, logprobs = true })
  T.ok(type(r.logprobs) == "table" and #r.logprobs > 0)
  local text = {}
  for i, item in ipairs(r.logprobs) do
    T.ok(item.logprob <= 0, "logprob " .. i)
    text[i] = item.token
  end
  T.eq(table.concat(text), r.text)
  local s = R.logprob_stats(r)
  T.eq(s.n, #r.logprobs)
  T.near(R.confidence(r), math.exp(s.min), 1e-12)
  local plain = assert(m:chat("What is 12 + 30?"))
  T.eq(plain.logprobs, nil)
  T.eq(R.confidence(plain), nil)
  local sr = assert(m:stream({ messages = { { role = "user", content = "What is 12 + 30?" } }, logprobs = true },
    { on_delta = function() end }))
  T.eq(#sr.logprobs, #r.logprobs)
  T.eq(sr.logprobs[1].logprob, r.logprobs[1].logprob)
end)

-- ---- fallback ----------------------------------------------------------------------------------

T.test("fallback: runtime errors move on; which model answered is recorded", function()
  local broken = sim("gpt-4o-mini", { ["x-sim-fault"] = "500" })
  local dropped = sim("gpt-4.1-mini", { ["x-sim-fault"] = "drop" })
  local good = sim("gpt-4o")
  local f = R.fallback { broken, dropped, good }
  local r, err = f:chat("What is 2 + 2?")
  T.ok(r, tostring(err))
  T.eq(r.routed_to, "gpt-4o")
  T.eq(r.fallbacks, 2)
  T.eq(#r.fallback_errors, 2)
  T.eq(r.fallback_errors[1].model, "gpt-4o-mini")
  T.eq(r.fallback_errors[1].error.status, 500)
  T.eq(r.fallback_errors[2].error.kind, "transport")
  T.eq(r.text, "4")
  -- the first model answers: nothing recorded
  local r2 = assert(R.fallback { good, broken }:chat("What is 2 + 2?"))
  T.eq(r2.routed_to, "gpt-4o")
  T.eq(r2.fallbacks, 0)
  T.eq(f:stats(), { calls = 1, fallbacks = 1, failures = 0 })
  -- all fail: the last error, with every attempt
  local r3, e3 = R.fallback { broken, dropped }:chat("hi")
  T.eq(r3, nil)
  T.eq(e3.kind, "transport")
  T.eq(#e3.fallback_errors, 2)
  -- misuse is not a reason to fall back
  T.err(function() f:chat(42) end, "string or table expected")
  -- should_fallback can stop it
  local stop = R.fallback { broken, good, should_fallback = function(e) return e.status ~= 500 end }
  local r4, e4 = stop:chat("hi")
  T.eq(r4, nil)
  T.eq(e4.status, 500)
end)

T.test("fallback: embeddings and streams", function()
  local broken = llm.model { name = "text-embedding-3-small", headers = { ["x-sim-fault"] = "503",
    ["x-sim-profile"] = "zero" }, max_retries = 0 }
  local good = llm.model { name = "text-embedding-3-small", headers = zero }
  local e = assert(R.fallback { broken, good }:embed("hello"))
  T.eq(e.fallbacks, 1)
  T.eq(#e.vectors[1], 1536)
  local f = R.fallback { sim("gpt-4o-mini", { ["x-sim-fault"] = "500" }), sim("gpt-4o") }
  local want = assert(sim("gpt-4o"):chat("Tell me a story."))
  local parts = {}
  local s = f:stream("Tell me a story.")
  for d in s do parts[#parts + 1] = d.text end
  T.eq(table.concat(parts), want.text)
  local r = assert(s:result())
  T.eq(r.routed_to, "gpt-4o")
  T.eq(r.fallbacks, 1)
  -- on_delta form
  local n = 0
  local r2 = assert(f:stream("Tell me a story.", { on_delta = function() n = n + 1 end }))
  T.eq(r2.text, want.text)
  T.ok(n > 1)
  -- a stream that fails after its first delta is not retried elsewhere
  local mid = R.fallback { sim("gpt-4o", { ["x-sim-fault"] = "drop_mid_stream" }), sim("gpt-4o-mini") }
  local r3, e3 = mid:stream("Tell me a long story.", { on_delta = function() end })
  T.eq(r3, nil)
  T.ok(e3.partial_text and #e3.partial_text > 0, tostring(e3))
  T.eq(#e3.fallback_errors, 1)
end)

-- ---- cascade ------------------------------------------------------------------------------------

T.test("cascade: escalations counted, both costs on escalated responses", function()
  local mini, big = sim("gpt-4o-mini"), sim("gpt-4o")
  local c = R.cascade { mini, big, accept = function(_, _, opts) return opts.case ~= "hard" end }
  local cases = { "easy", "hard", "easy", "hard", "hard", "easy", "easy", "easy", "easy", "easy" }
  for i, kind in ipairs(cases) do
    local q = ("What is %d + %d?"):format(i, 7 * i)
    local r = assert(c:chat(q, { case = kind }))
    if kind == "hard" then
      T.eq(r.escalated, true)
      T.eq(r.routed_to, "gpt-4o")
      local cheap, strong = assert(mini:chat(q)), assert(big:chat(q))
      T.near(r.cost, cheap.cost + strong.cost, 1e-15)
      T.eq(r.cascade.cheap_cost, cheap.cost)
      T.eq(r.cascade.strong_cost, strong.cost)
      T.eq(r.cascade.cheap_text, cheap.text)
      T.eq(r.cascade.reason, "not accepted")
      T.ok(r.latency_ms >= 0 and r.ttft_ms >= 0)
    else
      T.eq(r.escalated, false)
      T.eq(r.routed_to, "gpt-4o-mini")
      T.eq(r.cost, assert(mini:chat(q)).cost)
    end
  end
  local st = c:stats()
  T.eq(st.calls, 10)
  T.eq(st.escalations, 3)
  T.eq(st.accepted, 7)
  T.near(st.escalation_rate, 0.3, 1e-12)
  T.eq(st.cheap_errors, 0)
  T.eq(st.checker_errors, 0)
  T.near(st.cost, st.cheap_cost + st.strong_cost, 1e-15)
end)

T.test("cascade: a throwing checker escalates, is counted, and the run goes on", function()
  local c = R.cascade { sim("gpt-4o-mini"), sim("gpt-4o"), accept = function(resp)
    if resp.text == "9" then error("checker broke on " .. resp.text) end
    return true
  end }
  local r = assert(c:chat("What is 4 + 5?"))
  T.eq(r.escalated, true)
  T.ok(r.cascade.reason:find("the checker raised", 1, true))
  T.ok(tostring(c.last_checker_error):find("checker broke on 9", 1, true))
  local r2 = assert(c:chat("What is 4 + 6?"))
  T.eq(r2.escalated, false)
  T.eq(c:stats().checker_errors, 1)
  T.eq(c:stats().escalations, 1)
end)

T.test("cascade: a failing cheap model escalates; a failing strong one returns the error", function()
  local c = R.cascade { sim("gpt-4o-mini", { ["x-sim-fault"] = "500" }), sim("gpt-4o"), accept = function() return true end }
  local r = assert(c:chat("What is 1 + 1?"))
  T.eq(r.escalated, true)
  T.eq(r.cascade.cheap_error.status, 500)
  T.eq(r.cost, assert(sim("gpt-4o"):chat("What is 1 + 1?")).cost) -- a failed call costs nothing
  T.eq(c:stats().cheap_errors, 1)
  local both = R.cascade { sim("gpt-4o-mini"), sim("gpt-4o", { ["x-sim-fault"] = "503" }), accept = function() return false end }
  local r2, e2 = both:chat("What is 1 + 1?")
  T.eq(r2, nil)
  T.eq(e2.status, 503)
  T.eq(e2.cheap_response.text, "2")
  T.eq(both:stats().strong_errors, 1)
  T.err(function() R.cascade { sim("gpt-4o-mini"), sim("gpt-4o") } end, "accept")
  T.err(function() both:embed("x") end, "no embed")
end)

T.test("cascade: logprob thresholds ask the cheap model for logprobs", function()
  local mini, big = sim("gpt-4o-mini"), sim("gpt-4o")
  local q = "What is 17 * 23?"
  local lp = R.logprob_stats(assert(mini:chat { messages = { { role = "user", content = q } }, logprobs = true }))
  local all = R.cascade { mini, big, accept = R.min_logprob(-math.huge) }
  local r = assert(all:chat(q))
  T.eq(r.escalated, false)
  T.ok(r.logprobs, "the cheap call asked for logprobs")
  local none = R.cascade { mini, big, accept = R.min_logprob(0) }
  T.eq(assert(none:chat(q)).escalated, true)
  -- just below and just above the answer's own statistic
  T.eq(assert(R.cascade { mini, big, accept = R.min_logprob(lp.min - 1e-9) }:chat(q)).escalated, false)
  T.eq(assert(R.cascade { mini, big, accept = R.min_logprob(lp.min + 1e-9) }:chat(q)).escalated, true)
  T.eq(assert(R.cascade { mini, big, accept = R.min_logprob(lp.mean + 1e-9, "mean") }:chat(q)).escalated, true)
  T.eq(assert(R.cascade { mini, big, accept = R.min_confidence(math.exp(lp.min) * 0.999) }:chat(q)).escalated, false)
  -- a plain accept function gets no logprobs...
  local plain = R.cascade { mini, big, accept = function(resp) return resp.logprobs == nil end }
  T.eq(assert(plain:chat(q)).escalated, false)
  -- ...unless marked
  local marked = R.cascade { mini, big, accept = R.with_logprobs(function(resp) return resp.logprobs ~= nil end) }
  T.eq(assert(marked:chat(q)).escalated, false)
  T.err(function() R.min_logprob("x") end, "number expected")
end)

T.test("cascade: a cached cheap answer keeps its logprobs", function()
  local path = os.tmpname()
  os.remove(path)
  local cache <close> = assert(llm.cache.open { path = path })
  local mini = llm.model { name = "gpt-4o-mini", headers = zero, cache = cache }
  local c = R.cascade { mini, sim("gpt-4o"), accept = R.min_logprob(-math.huge) }
  local a = assert(c:chat("What is 5 + 6?"))
  local b = assert(c:chat("What is 5 + 6?"))
  T.eq(a.cached, false)
  T.eq(b.cached, "exact")
  T.eq(b.escalated, false)
  T.eq(#b.logprobs, #a.logprobs)
  T.near(b.logprobs[1].logprob, a.logprobs[1].logprob, 1e-12) -- stored as JSON with 14 digits
  T.eq(b.logprobs[1].token, a.logprobs[1].token)
  os.remove(path)
end)

T.test("cascade: streaming", function()
  local mini, big = sim("gpt-4o-mini"), sim("gpt-4o")
  local yes = R.cascade { mini, big, accept = function() return true end }
  local s = yes:stream("What is 20 + 22?")
  local parts = {}
  for d in s do parts[#parts + 1] = d.text end
  T.eq(parts, { "42" })
  T.eq(assert(s:result()).escalated, false)
  local no = R.cascade { mini, big, accept = function() return false end }
  local want = assert(big:chat("Tell me a story."))
  local got = {}
  local r = assert(no:stream("Tell me a story.", { on_delta = function(d) got[#got + 1] = d.text end }))
  T.eq(table.concat(got), want.text)
  T.eq(r.escalated, true)
  T.eq(r.routed_to, "gpt-4o")
  T.eq(no:stats().escalations, 1)
end)

-- ---- routers --------------------------------------------------------------------------------

T.test("by_length: short prompts to the first model, long ones on", function()
  local r = R.by_length { { max_tokens = 30, model = sim("gpt-4o-mini") }, { model = sim("gpt-4o") } }
  T.eq(assert(r:chat("What is 2 + 2?")).routed_to, "gpt-4o-mini")
  T.eq(assert(r:chat(("word "):rep(40) .. "What is 2 + 2?")).routed_to, "gpt-4o")
  T.eq(r:stats(), { ["gpt-4o-mini"] = 1, ["gpt-4o"] = 1 })
  -- the count is the chat count (messages and their overhead)
  local n = R.prompt_tokens("What is 2 + 2?", "gpt-4o-mini")
  T.eq(n, llm.tokens.chat({ { role = "user", content = "What is 2 + 2?" } }, "gpt-4o-mini"))
  local exact = R.by_length { { max_tokens = n, model = sim("gpt-4o-mini") }, { model = sim("gpt-4o") } }
  T.eq(assert(exact:chat("What is 2 + 2?")).routed_to, "gpt-4o-mini")
  T.eq(assert(exact:chat("What is 2 + 2? Quickly.")).routed_to, "gpt-4o")
  -- no rule for a long request: a runtime error
  local short_only = R.by_length { { max_tokens = 5, model = sim("gpt-4o-mini") } }
  local none, err = short_only:chat("What is 2 + 2?")
  T.eq(none, nil)
  T.eq(err.kind, "route")
  local s = assert(r:stream("What is 2 + 2?", { on_delta = function() end }))
  T.eq(s.routed_to, "gpt-4o-mini")
  T.err(function() R.by_length { { model = sim("gpt-4o") }, { max_tokens = 5, model = sim("gpt-4o") } } end, "never apply")
  T.err(function() R.by_length { { max_tokens = 5 } } end, "needs a model")
end)

T.test("a custom router is a plain function", function()
  local mini, big = sim("gpt-4o-mini"), sim("gpt-4o")
  local seen
  local r = R.router(function(req, opts, kind)
    seen = kind
    local text = type(req) == "string" and req or req.messages[#req.messages].content
    if text:find("%d+ %* %d+") then return big end
    return mini
  end, "arith")
  T.eq(assert(r:chat("What is 12 * 34?")).routed_to, "gpt-4o")
  T.eq(assert(r:chat("What is 12 + 34?")).routed_to, "gpt-4o-mini")
  T.eq(seen, "chat")
  local nothing = R.router(function() return nil end)
  local x, e = nothing:chat("hi")
  T.eq(x, nil)
  T.eq(e.kind, "route")
  -- routers compose: a fallback over a cascade
  local f = R.fallback { R.cascade { sim("gpt-4o-mini", { ["x-sim-fault"] = "500" }),
    sim("gpt-4o", { ["x-sim-fault"] = "500" }), accept = function() return true end }, mini }
  local y = assert(f:chat("What is 3 + 3?"))
  T.eq(y.routed_to, "gpt-4o-mini")
  T.eq(y.fallbacks, 1)
end)

-- ---- sweep ------------------------------------------------------------------------------------

T.test("sweep: the frontier on arithmetic cases, deterministic", function()
  local cases = arithmetic(60)
  local mini, big = sim("gpt-4o-mini"), sim("gpt-4o")
  local function run()
    return R.sweep {
      cases = cases, thresholds = { -math.huge, -1, -0.3, -0.1, 0 },
      make = function(th) return R.cascade { mini, big, accept = R.min_logprob(th) } end,
      prompt = ask,
      check = function(c, r) return r.text == c.answer end,
    }
  end
  local sw = run()
  local p = sw.points
  T.eq(#p, 5)
  T.eq(p[1].escalation_rate, 0)
  T.eq(p[5].escalation_rate, 1)
  -- the ends match the models alone
  local function alone(m)
    local right, cost = 0, 0
    for _, c in ipairs(cases) do
      local r = assert(m:chat(ask(c)))
      if r.text == c.answer then right = right + 1 end
      cost = cost + r.cost
    end
    return right, cost
  end
  local mr, mc = alone(mini)
  local br, bc = alone(big)
  T.eq(p[1].correct, mr)
  T.near(p[1].cost, mc, 1e-12)
  T.eq(p[5].correct, br)
  T.near(p[5].cost, mc + bc, 1e-12) -- always escalated: both models paid
  for i = 2, 5 do T.ok(p[i].cost >= p[i - 1].cost, "cost grows with the threshold") end
  for _, q in ipairs(p) do
    T.eq(q.n, 60)
    T.near(q.accuracy, q.correct / 60, 1e-12)
    T.ok(q.lo <= q.accuracy and q.accuracy <= q.hi)
    T.eq(q.errors, 0)
  end
  -- Pareto flags by brute force
  for _, a in ipairs(p) do
    local dominated = false
    for _, b in ipairs(p) do
      if b.cost <= a.cost and b.accuracy >= a.accuracy and (b.cost < a.cost or b.accuracy > a.accuracy) then
        dominated = true
      end
    end
    T.eq(a.pareto, not dominated)
  end
  -- the chosen point: the cheapest within 2 points of the best
  local best = 0
  for _, q in ipairs(p) do best = math.max(best, q.accuracy) end
  T.eq(sw.best.accuracy, best)
  T.ok(sw.chosen.accuracy >= best - 0.02)
  for _, q in ipairs(p) do
    if q.accuracy >= best - 0.02 then T.ok(q.cost >= sw.chosen.cost) end
  end
  T.ok(sw.chosen.chosen)
  T.eq(sw.tolerance, 2, "in percentage points")
  local text = tostring(sw)
  T.ok(text:find("<- chosen", 1, true) and text:find("pareto", 1, true), text)
  T.eq(sw:text(), text .. "\n", "text() returns what print() prints")
  -- tolerance is in points: 0 points picks the best itself, 100 the cheapest point
  local strict = R.sweep { cases = cases, thresholds = { -math.huge, 0 }, prompt = ask,
    make = function(th) return R.cascade { mini, big, accept = R.min_logprob(th) } end,
    check = function(c, r) return r.text == c.answer end, tolerance = 0 }
  T.eq(strict.chosen, strict.best)
  local loose = R.sweep { cases = cases, thresholds = { -math.huge, 0 }, prompt = ask,
    make = function(th) return R.cascade { mini, big, accept = R.min_logprob(th) } end,
    check = function(c, r) return r.text == c.answer end, tolerance = 100 }
  T.eq(loose.chosen.threshold, -math.huge, "the cheapest point")
  T.err(function() R.sweep { cases = {}, thresholds = { 1 }, make = print, check = print, tolerance = 101 } end,
    "percentage points")
  -- the same cases give the same frontier
  local again = run()
  for i = 1, 5 do
    T.eq(again.points[i].correct, p[i].correct)
    T.eq(again.points[i].cost, p[i].cost)
  end
end)

T.test("sweep: errors and empty case lists are reported", function()
  local bad = sim("gpt-4o-mini", { ["x-sim-fault"] = "500" })
  local sw = R.sweep {
    cases = arithmetic(4), thresholds = { 1 },
    make = function() return bad end,
    prompt = ask, check = function() return true end,
  }
  T.eq(sw.points[1].errors, 4)
  T.eq(sw.points[1].accuracy, 0)
  local raising = R.sweep {
    cases = arithmetic(3), thresholds = { 1 },
    make = function() return sim("gpt-4o") end,
    prompt = ask, check = function() error("oops") end,
  }
  T.eq(raising.points[1].check_errors, 3)
  T.eq(raising.points[1].correct, 0)
  local empty = R.sweep { cases = {}, thresholds = { 1, 2 }, make = function() return sim("gpt-4o") end,
    check = function() return true end }
  T.eq(empty.chosen, nil)
  T.eq(empty.points[1].n, 0)
  T.ok(tostring(empty):find("no cases", 1, true))
  T.err(function() R.sweep { cases = {}, thresholds = {}, make = print, check = print } end, "thresholds")
  T.err(function() R.sweep { cases = {}, thresholds = { 1 }, check = print } end, "make")
  local w = require("llm.route_sweep").wilson
  local lo, hi = w(5, 10)
  T.near(lo, 0.2366, 1e-4)
  T.near(hi, 0.7634, 1e-4)
  lo, hi = w(0, 10)
  T.eq(lo, 0)
  T.near(hi, 0.2775, 1e-4)
end)
