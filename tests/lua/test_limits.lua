-- llm.limits: pacing under rate limits. The buckets and the concurrency
-- window on a fake clock (no window edge admits a double burst, refunds,
-- AIMD), then against the simulator with its rate limits on: a request
-- that can never fit, pacing without 429s, limits learned from headers and
-- followed when they change, a 429 with retry-after pausing the whole
-- limiter, headers with odd values, and the progress words.
local T = ...
local B = require "llm.limits_bucket"
local limits = require "llm.limits"

local function fresh()
  limits.reset()
  limits.enable(true)
  llm.sim.configure { rate_limit = false, faults = false }
end

-- the units admitted in the worst 60-second window of a list of {t, units}
local function worst_window(admits, w)
  local worst, j, sum = 0, 1, 0
  for i = 1, #admits do
    sum = sum + admits[i][2]
    while admits[i][1] - admits[j][1] >= w do
      sum = sum - admits[j][2]
      j = j + 1
    end
    if sum > worst then worst = sum end
  end
  return worst
end

T.test("bucket: paced at the limit, no 60 s window above limit + cap + one request", function()
  local t, b = 0, B.bucket(6000, nil, 0)
  T.eq(b.cap, 30)
  local admits = {}
  -- greedy: requests of 1..200 units go as soon as the bucket allows, for 5 minutes
  local i = 0
  while t < 300 do
    i = i + 1
    local c = 1 + (i * 37) % 200
    t = t + b:wait(c, t)
    b:take(c, t)
    admits[#admits + 1] = { t, c }
  end
  local worst = worst_window(admits, 60)
  T.ok(worst <= 6000 + 30 + 200, "worst window " .. worst)
  T.ok(worst >= 6000 * 0.97, "and it uses the limit: " .. worst)
  -- a fixed-window counter would have admitted 2x around an edge; a
  -- full-size bucket 2x in the first minute: neither can happen here
  T.ok(worst_window(admits, 1) <= 100 + 30 + 200, "no burst within a second")
end)

T.test("bucket: refunds up to the cap, a request larger than the cap goes into debt, limits change", function()
  local b = B.bucket(600, 0.1, 0) -- 10 per second, cap 60
  b:take(60, 0)
  T.near(b.level, 0, 1e-9)
  b:give(500, 0)
  T.near(b.level, 60, 1e-9, "never above the cap")
  T.eq(b:wait(200, 0), 0, "a request above the cap needs a full bucket")
  b:take(200, 0)
  T.near(b:wait(10, 0), 15, 1e-9, "then the debt is paid back first")
  b:set_limit(300, 0)
  T.near(b.cap, 30, 1e-9)
  T.near(b:wait(10, 0), 30, 1e-9, "the new rate applies")
  b:correct(-5, 0)
  T.near(b.level, -140, 1e-9, "correct only lowers")
  b:correct(1e9, 0)
  T.near(b.level, -140, 1e-9)
end)

T.test("window: unbounded until an overload, halves, grows by one per window, one signal per flight", function()
  local w = B.window()
  T.eq(w.limit, math.huge)
  w.in_flight = 40
  T.eq(w:overload(0, 1), true)
  T.eq(w.limit, 20)
  T.eq(w:overload(0.5, 1.1), false, "a call started before the decrease")
  T.eq(w:overload(1.2, 1.3), true)
  T.eq(w.limit, 10)
  for _ = 1, 10 do w:success() end
  T.ok(w.limit > 10.9 and w.limit < 11.1, tostring(w.limit))
  local m = B.window(8)
  T.eq(m.limit, 8)
  for _ = 1, 100 do m:success() end
  T.eq(m.limit, 8, "bounded by max_concurrency")
  m.in_flight = 1
  m:overload(nil, 0)
  m:overload(nil, 1)
  m:overload(nil, 2)
  T.eq(m.limit, 1, "at least one")
end)

T.test("misuse raises; the environment's format", function()
  fresh()
  T.err(function() llm.limits.set("gpt-4o", { tpm = -1 }) end, "tpm must be")
  T.err(function() llm.limits.set("gpt-4o", { rpn = 5 }) end, "unknown limit")
  T.err(function() llm.limits.set("gpt-4o", { tpm = 5, on_error = "local" }) end, "processes")
  T.err(function() llm.limits.set("gpt-4o", { tpm = 5, on_error = "local", processes = 2 }) end, "redis")
  T.err(function() llm.model { "sim/gpt-4o-mini", limits = { max_concurrency = 0 } } end, "max_concurrency")
  local t = limits.parse_env("gpt-4o:rpm=500,tpm=30000; claude-x:itpm=1000,learn=false")
  T.eq(t, { ["gpt-4o"] = { rpm = 500, tpm = 30000 }, ["claude-x"] = { itpm = 1000, learn = false } })
  T.err(function() limits.parse_env("nonsense") end, "LLMRUN_LIMITS")
end)

T.test("a request that can never fit fails at once with kind limit, unsent", function()
  fresh()
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" }, limits = { tpm = 1000 } }
  local before = llm.sim.stats().requests
  local r, err = m:chat { user = "hello", max_tokens = 2000 }
  T.eq(r, nil)
  T.eq(err.kind, "limit")
  T.ok(err.message:find("can never", 1, true) and err.message:find("1000", 1, true), err.message)
  T.eq(llm.sim.stats().requests, before, "not sent")
  T.eq(llm.limits.stats()[1].refused, 1)
  -- without max_tokens the default estimate is cut to what fits
  T.ok(m:chat { user = "hello" }, "fits")
  -- Anthropic's output limit: max_tokens alone above otpm
  local c = llm.model { "sim/claude-sonnet-4-5", headers = { ["x-sim-profile"] = "zero" }, limits = { otpm = 500 } }
  local _, e2 = c:chat { user = "hi", max_tokens = 800 }
  T.eq(e2.kind, "limit")
  T.ok(e2.message:find("max_tokens", 1, true), e2.message)
end)

local function run_calls(m, n, max_tokens, opts)
  local list = {}
  for i = 1, n do list[i] = i end
  local toks, retries, fails = 0, 0, 0
  local t0 = llm.now()
  llm.map(list, function(i)
    local r = m:chat({ user = ("word "):rep(40 + (i % 5) * 30) .. i, max_tokens = max_tokens }, opts)
    if r then
      toks = toks + r.usage.prompt_tokens + r.usage.completion_tokens
      retries = retries + r.retries
    else fails = fails + 1 end
  end, { concurrency = 64, progress = false })
  return llm.now() - t0, toks, retries, fails
end

T.test("paced against the simulator's limits: no 429, at the limit's pace", function()
  fresh()
  llm.sim.configure { rate_limit = { tpm = 300000, rpm = 100000, count = "usage" } }
  local before = llm.sim.stats().rate_limited
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-ttft-ms"] = "5", ["x-sim-tokens-per-s"] = "0" },
                        limits = { tpm = 300000 } }
  local wall, toks, retries, fails = run_calls(m, 60, 100)
  T.eq(fails, 0)
  T.eq(llm.sim.stats().rate_limited - before, 0, "no 429")
  T.eq(retries, 0)
  local ideal = toks / 300000 * 60
  T.ok(wall > ideal * 0.8 and wall < ideal * 1.5 + 0.5, ("wall %.2f s, ideal %.2f s"):format(wall, ideal))
  local s = llm.limits.stats()[1]
  T.eq(s.admitted, 60)
  T.eq(s.tpm, 300000)
  T.eq(s.rpm, 100000, "learned from the headers")
  fresh()
end)

T.test("limits learned from the headers alone, and followed when the provider halves them", function()
  fresh()
  llm.sim.configure { rate_limit = { tpm = 400000, count = "usage" } }
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" } }
  assert(m:chat "first")
  T.eq(llm.limits.stats()[1].tpm, 400000)
  llm.sim.configure { rate_limit = { tpm = 200000, count = "usage" } }
  assert(m:chat "second")
  T.eq(llm.limits.stats()[1].tpm, 200000, "the lower limit at once")
  T.eq(llm.limits.stats()[1].learned.tpm, 200000)
  -- a user's limit and a lower stated one: the lower wins; a higher stated one does not raise it
  llm.limits.set("sim/gpt-4o-mini", { tpm = 100000 })
  assert(m:chat "third")
  T.eq(llm.limits.stats()[1].tpm, 100000)
  -- learn = false: the headers are ignored
  fresh()
  llm.sim.configure { rate_limit = { tpm = 400000, count = "usage" } }
  local q = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" }, limits = { learn = false } }
  assert(q:chat "x")
  T.eq(llm.limits.stats()[1].tpm, nil)
  fresh()
end)

T.test("headers with odd values change nothing and raise nothing", function()
  fresh()
  local m = llm.model { "sim/gpt-4o-mini", limits = { tpm = 60000 } }
  local lim = limits.for_model(m)
  local R = require "llm.ratelimit_headers"
  for _, h in ipairs {
    { ["x-ratelimit-limit-tokens"] = "-5", ["x-ratelimit-remaining-tokens"] = "-100" },
    { ["x-ratelimit-limit-tokens"] = "1e300", ["x-ratelimit-reset-tokens"] = "soon" },
    { ["x-ratelimit-limit-tokens"] = "0", ["x-ratelimit-reset-tokens"] = "-3s" },
    { ["x-ratelimit-limit-tokens"] = "nan", ["x-ratelimit-remaining-tokens"] = "inf" },
    { ["x-ratelimit-limit-tokens"] = "abc", ["x-ratelimit-reset-tokens"] = "99999999999h" },
    { ["anthropic-ratelimit-tokens-reset"] = "2026-13-45T99:99:99Z", ["anthropic-ratelimit-tokens-limit"] = "" },
  } do
    lim:learn(R.parse(h, llm.wallclock and llm.wallclock() or os.time()))
  end
  -- and a raw table with garbage types, as a broken parser could give
  lim:learn { tokens = { limit = "many", remaining = {} }, requests = "x" }
  T.eq(lim.limits.tokens, 60000)
  T.eq(lim.learned.tokens, nil)
  T.ok(lim.buckets.tokens.level >= 0, "the level was not driven negative")
  -- a stated limit of 1e13 (above any real one) is garbage too
  lim:learn { tokens = { limit = 1e13 } }
  T.eq(lim.limits.tokens, 60000)
end)

T.test("a 429 with retry-after pauses every queued call of the key, not only its own", function()
  fresh()
  local m = llm.model { "sim/gpt-4o-mini", retry_scale = 1, max_retries = 0,
                        headers = { ["x-sim-ttft-ms"] = "1", ["x-sim-tokens-per-s"] = "0" },
                        limits = { rpm = 100000 } }
  -- the first call gets a 429 that asks for 400 ms; the others, sent after it, must wait
  local first = m:with { headers = { ["x-sim-fault"] = "429", ["x-sim-retry-after-ms"] = "400",
                                    ["x-sim-ttft-ms"] = "1" } }
  local t0 = llm.now()
  local _, err = first:chat "storm"
  T.eq(err.status, 429)
  local s = llm.limits.stats()[1]
  T.eq(s.rate_limited, 1)
  T.ok(s.paused_s > 0.2, "paused: " .. s.paused_s)
  local ends = {}
  llm.map({ 1, 2, 3, 4 }, function(i)
    assert(m:chat("after " .. i))
    ends[i] = llm.now() - t0
  end, { progress = false })
  for i = 1, 4 do T.ok(ends[i] >= 0.38, ("call %d ended at %.3f s"):format(i, ends[i])) end
  -- a 429 storm: many calls rejected at once shrink the concurrency window once per flight
  fresh()
  local storm = llm.model { "sim/gpt-4o-mini", retry_scale = 0.01, max_retries = 0,
                            headers = { ["x-sim-fault"] = "429", ["x-sim-retry-after-ms"] = "50",
                                        ["x-sim-ttft-ms"] = "20", ["x-sim-tokens-per-s"] = "0" },
                            limits = { rpm = 100000 } }
  local list = {}
  for i = 1, 30 do list[i] = i end
  llm.map(list, function(i) storm:chat("s" .. i) end, { concurrency = 30, progress = false })
  s = llm.limits.stats()[1]
  T.eq(s.rate_limited, 30)
  T.ok(s.concurrency and s.concurrency >= 1 and s.concurrency <= 15, "halved: " .. tostring(s.concurrency))
  T.eq(s.in_flight, 0, "every slot given back")
  fresh()
end)

T.test("529 overloaded shrinks the window; successes grow it back, up to max_concurrency", function()
  fresh()
  local m = llm.model { "sim/claude-sonnet-4-5", max_retries = 0,
                        headers = { ["x-sim-ttft-ms"] = "10", ["x-sim-tokens-per-s"] = "0" },
                        limits = { max_concurrency = 16, rpm = 100000 } }
  local bad = m:with { headers = { ["x-sim-fault"] = "529", ["x-sim-ttft-ms"] = "10" } }
  local list = {}
  for i = 1, 16 do list[i] = i end
  llm.map(list, function(i) bad:chat { user = "o" .. i, max_tokens = 10 } end, { concurrency = 16, progress = false })
  local low = llm.limits.stats()[1].concurrency
  T.ok(low <= 8, "halved: " .. low)
  list = {}
  for i = 1, 200 do list[i] = i end
  llm.map(list, function(i) assert(m:chat { user = "g" .. i, max_tokens = 10 }) end, { concurrency = 32, progress = false })
  local high = llm.limits.stats()[1].concurrency
  T.ok(high > low and high <= 16, ("grew from %d to %d"):format(low, high))
  fresh()
end)

T.test("pacing off: calls go as they come; the stats and progress words when on", function()
  fresh()
  llm.limits.enable(false)
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" }, limits = { tpm = 1000 } }
  T.ok(m:chat { user = "x", max_tokens = 5000 }, "no pacing, no refusal")
  llm.limits.enable(true)
  -- a queue waiting for tokens shows in the progress line
  local slow = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" }, limits = { tpm = 6000, max_concurrency = 4 } }
  local seen
  local list = {}
  for i = 1, 6 do list[i] = i end
  llm.map(list, function(i)
    slow:chat { user = "q" .. i, max_tokens = 20 }
    seen = seen or llm.limits.progress_text()
  end, { concurrency = 6, progress = false })
  T.ok(seen and seen:find("waiting for TPM", 1, true), tostring(seen))
  local line = require("llm.progress").line(3, 10, 1, 0, 0, 0, "conc 4  waiting for TPM")
  T.ok(line:find("conc 4  waiting for TPM", 1, true), line)
  fresh()
end)

T.test("a call cancelled while it waits gives its place and its reservation back", function()
  fresh()
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" }, limits = { rpm = 60 } }
  assert(m:chat "one") -- the cap of 1 request is spent: the next waits a second
  local r, err = llm.with_timeout(0.1, function() return m:chat "two" end)
  T.eq(r, nil)
  T.eq(err.kind, "timeout")
  local s = llm.limits.stats()[1]
  T.eq(s.queued, 0)
  T.eq(s.in_flight, 0)
  local lim = limits.for_model(m)
  T.ok(lim.buckets.requests.level > -0.5, "the cancelled call's request came back: " .. lim.buckets.requests.level)
  T.eq(lim.timer, nil, "no timer left waking the limiter for nobody")
  fresh()
end)

T.test("the gateway's pass-through calls are paced too: its limits, its headers learned", function()
  fresh()
  llm.sim.configure { rate_limit = { tpm = 500000, count = "usage" } }
  local fwd = require "llm.proxy_forward"
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" }, limits = { tpm = 1000 } }
  local body = { messages = { { role = "user", content = "hi" } }, max_tokens = 2000 }
  local wire = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":2000}'
  local r, err = fwd.chat(m, body, wire, {})
  T.eq(r, nil)
  T.eq(err.kind, "limit")
  local ok = fwd.chat(m, { messages = body.messages, max_tokens = 10 },
    '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":10}', {})
  T.ok(ok, "a call that fits goes")
  T.eq(llm.limits.stats()[1].learned.tpm, 500000, "learned from the upstream's headers")
  T.eq(llm.limits.stats()[1].admitted, 1)
  fresh()
end)

T.test("a provider that counts prompt + max_tokens and keeps it: refund = false stays under it", function()
  fresh()
  -- the simulator's default counting: prompt + max_tokens at admission, nothing given back
  llm.sim.configure { rate_limit = { tpm = 600000 } }
  local before = llm.sim.stats().rate_limited
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-ttft-ms"] = "5", ["x-sim-tokens-per-s"] = "0" },
                        limits = { tpm = 600000, refund = false, learn = false } }
  -- 40 calls of ~150 prompt + 400 max_tokens: ~22,000 tokens reserved, 2.2 s at this
  -- limit; with refunds the pacer would count their usage (about half) and go faster
  local wall, _, retries, fails = run_calls(m, 40, 400, { max_retries = 0 })
  T.eq(fails, 0)
  T.eq(retries, 0)
  T.eq(llm.sim.stats().rate_limited - before, 0)
  T.ok(wall > 1.5, ("paced by what was reserved: %.2f s"):format(wall))
  fresh()
end)

T.test("through the gateway over HTTP: a request that never fits is a 429 not to retry", function()
  fresh()
  local http = require "_llm.http"
  local p = assert(require("llm.proxy").start { config = { models = {
    ["gpt-4o-mini"] = { provider = "sim", name = "gpt-4o-mini", limits = { tpm = 1000 } } } } })
  local res = assert(http.request { method = "POST", url = p.url .. "/v1/chat/completions", timeout = 10,
    headers = { "Content-Type: application/json" },
    body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5000}' })
  T.eq(res.status, 429)
  T.eq(res.headers["x-should-retry"], "false")
  T.ok(res.body:find("request_too_large", 1, true) and res.body:find("never", 1, true), res.body)
  local ok = assert(http.request { method = "POST", url = p.url .. "/v1/chat/completions", timeout = 10,
    headers = { "Content-Type: application/json" },
    body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":10}' })
  T.eq(ok.status, 200, ok.body)
  p:close()
  fresh()
end)

T.test("the simulator's and the gateway's options: rate_limit.count, --rate-limit", function()
  T.err(function() llm.sim.configure { rate_limit = { tpm = 10, count = "bogus" } } end, "count")
  llm.sim.configure { rate_limit = false }
  local o = require("llm.cli.serve_proxy").parse { "--proxy", "--rate-limit", "gpt-4o:rpm=5,tpm=100",
                                                   "--rate-limit", "*:max_concurrency=4" }
  T.eq(o.rate_limits, { ["gpt-4o"] = { rpm = 5, tpm = 100 }, ["*"] = { max_concurrency = 4 } })
  local ok, e = pcall(require("llm.cli.serve_proxy").parse, { "--proxy", "--rate-limit", "gpt-4o:tpm=-1" })
  T.eq(ok, false)
  T.ok(type(e) == "table" and tostring(e.usage):find("tpm must be", 1, true), tostring(e and e.usage))
end)
