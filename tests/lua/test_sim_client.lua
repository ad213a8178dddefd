-- llmrun's client against its own simulator: usage counted with the real
-- tokenizer, every injected fault ending in the documented behaviour
-- (retried or not, partial text kept and flagged), and the simulator's
-- request counter proving how many attempts went out.
local T = ...

local function model(name, extra)
  local spec = { name = name or "gpt-4o", provider = "sim", retry_scale = 0.01,
                 headers = { ["x-sim-profile"] = "zero" } }
  for k, v in pairs(extra or {}) do
    if k == "headers" then
      for hk, hv in pairs(v) do spec.headers[hk] = hv end
    else
      spec[k] = v
    end
  end
  return llm.model(spec)
end

local function requests()
  return llm.sim.stats().requests
end

T.test("usage is counted with the real tokenizer", function()
  local messages = { { role = "system", content = "Be brief." },
                     { role = "user", content = "Name three primes, please. ¿Qué tal? 日本語 🙂" } }
  local r = assert(model():chat { messages = messages })
  T.eq(r.usage.prompt_tokens, llm.tokens.chat(messages, "gpt-4o"))
  T.eq(r.usage.completion_tokens, llm.tokens.count(r.text, "gpt-4o"))
  T.eq(r.provider, "sim")
  T.eq(r.simulated, true)
  local s = assert(model():stream({ messages = messages }, { on_delta = function() end }))
  T.eq(s.usage.prompt_tokens, r.usage.prompt_tokens, "include_usage in streams")
  T.eq(s.text, r.text, "same request, same answer")
end)

T.test("faults that are retried: one attempt fails, the next succeeds", function()
  for _, fault in ipairs({ "429", "500", "502", "503", "529", "drop_before_headers" }) do
    local before = requests()
    local r, err = model(nil, { headers = { ["x-sim-fault"] = fault, ["x-sim-fault-attempts"] = "1",
                                            ["x-sim-retry-after-ms"] = "5" } }):chat "hi"
    T.ok(r, fault .. ": " .. tostring(err))
    T.eq(requests() - before, 2, fault .. ": attempts seen by the simulator")
    if fault == "drop_before_headers" then
      -- on a reused connection that died, curl itself re-sends once
      T.ok(r.retries <= 1, fault)
    else
      T.eq(r.retries, 1, fault)
    end
  end
end)

T.test("faults that are not retried fail at once with their status", function()
  for _, c in ipairs({ { "400", 400 }, { "401", 401 }, { "404", 404 }, { "insufficient_quota", 429 } }) do
    local before = requests()
    local m = model(nil, { headers = { ["x-sim-fault"] = c[1] } })
    local r, err = m:chat "hi"
    T.eq(r, nil, c[1])
    T.eq({ err.kind, err.status }, { "http", c[2] }, c[1])
    T.eq(requests() - before, 1, c[1] .. " is not retried")
  end
  -- the quota flag would make every later call to the simulator fail fast
  require("llm.transport").reset_quota_flags()
end)

T.test("malformed JSON in a 200 is a parse error", function()
  local r, err = model(nil, { headers = { ["x-sim-fault"] = "malformed_json" } }):chat "hi"
  T.eq(r, nil)
  T.eq(err.kind, "parse")
end)

T.test("stream faults after the first delta: no retry, partial text kept", function()
  for _, c in ipairs({ { "drop_mid_stream", "transport" }, { "error_chunk", "provider" } }) do
    local before = requests()
    local m = model(nil, { headers = { ["x-sim-fault"] = c[1], ["x-sim-fault-after"] = "3" } })
    local s = m:stream { user = "Tell me a long story.", max_tokens = 40 }
    local n = 0
    local err = T.err(function() for _ in s do n = n + 1 end end)
    T.eq(err.kind, c[2], c[1])
    T.ok(n >= 1, c[1] .. ": deltas before the fault")
    T.ok(err.partial_text and #err.partial_text > 0, c[1] .. ": partial text kept")
    T.eq(s.response.partial, true)
    T.eq(requests() - before, 1, c[1] .. ": never retried after a delta")
  end
end)

T.test("a stalled stream is cut by stall detection", function()
  local m = model(nil, { stall_timeout = 0.3, headers = { ["x-sim-fault"] = "stall",
                                                          ["x-sim-fault-after"] = "2",
                                                          ["x-sim-stall-ms"] = "5000" } })
  local r, err = m:stream({ user = "Tell me a story.", max_tokens = 30 }, { on_delta = function() end })
  T.eq(r, nil)
  T.eq({ err.kind, err.stalled }, { "timeout", true })
end)

T.test("slow headers hit the timeout and are retried", function()
  local m = model(nil, { timeout = 0.3, max_retries = 1,
                         headers = { ["x-sim-fault"] = "slow_headers", ["x-sim-header-delay-ms"] = "2000",
                                     ["x-sim-fault-attempts"] = "1" } })
  local r, err = m:chat "hi"
  T.ok(r, tostring(err))
  T.eq(r.retries, 1)
end)

T.test("TTFT is measured where the bytes arrive", function()
  local m = model(nil, { headers = { ["x-sim-profile"] = "", ["x-sim-ttft-ms"] = "150",
                                     ["x-sim-tokens-per-s"] = "200", ["x-sim-jitter"] = "0" } })
  local r = assert(m:stream({ user = "Say something.", max_tokens = 20 }, { on_delta = function() end }))
  T.ok(r.ttft_ms >= 150 and r.ttft_ms < 400, "ttft " .. r.ttft_ms)
  T.ok(r.latency_ms > r.ttft_ms + 50, "tokens arrive after the first one")
end)

T.test("embeddings: similar texts are close, dimensions honoured", function()
  local m = model("text-embedding-3-small")
  local r = assert(m:embed({ "How do I reset my password?", "How can I reset my password?",
                             "Best pizza in Naples" }, { dimensions = 256 }))
  T.eq(#r.vectors[1], 256)
  local function cos(a, b)
    local s = 0
    for i = 1, #a do s = s + a[i] * b[i] end
    return s
  end
  T.ok(cos(r.vectors[1], r.vectors[2]) > 0.8)
  T.ok(cos(r.vectors[1], r.vectors[3]) < 0.5)
  T.eq(r.usage.prompt_tokens, llm.tokens.count("How do I reset my password?", "text-embedding-3-small")
    + llm.tokens.count("How can I reset my password?", "text-embedding-3-small")
    + llm.tokens.count("Best pizza in Naples", "text-embedding-3-small"))
end)

-- max_idle_reuse (a network option: transport's table, the C reader, the
-- request struct, CURLOPT_MAXAGE_CONN): a kept-alive connection idle for
-- longer than that is not reused, so a server's idle close is never met.
-- curl counts whole seconds (idle 2.1 s > 1 s); the control without the
-- option reuses the same connection after the same wait.
-- Connections kept between bursts (src/loop.c, CURLMOPT_MAXCONNECTS):
-- curl's default keeps 4x the transfers running when one finishes, so a
-- sequential phase after a burst closed all but about 4 of the burst's
-- connections, and the next burst paid a handshake for each again. The
-- simulator's count of open connections shows it (the client's closes
-- reach it at once on loopback; the short sleeps let it see them).
-- The burst's answers take 100 ms, so its 16 calls overlap on a loaded
-- machine too; the sequential calls go to the same server at once.
T.test("a burst's connections outlive a sequential phase", function()
  local m = model("gpt-4o-mini")
  local slow = model("gpt-4o-mini", { headers = { ["x-sim-ttft-ms"] = "100" } })
  local items = {}
  for i = 1, 16 do items[i] = i end
  llm.map(items, function(i) return assert(slow:chat { user = "burst " .. i, max_tokens = 2 }) end,
          { concurrency = 16, progress = false })
  llm.sleep(0.05)
  local open_after_burst = llm.sim.stats().connections_open
  for i = 1, 30 do assert(m:chat { user = "one " .. i, max_tokens = 2 }) end
  llm.sleep(0.05)
  local open_after_sequence = llm.sim.stats().connections_open
  T.ok(open_after_burst >= 8, "the burst held several connections: " .. open_after_burst)
  T.ok(open_after_sequence >= open_after_burst - 1,
       ("open connections: %d after the burst, %d after 30 calls one at a time")
       :format(open_after_burst, open_after_sequence))
end)

T.test("max_idle_reuse: a connection idle longer than that is not reused", function()
  local function new_connections_after_idle(extra)
    local m = model("gpt-4o-mini", extra)
    assert(m:chat { user = "a", max_tokens = 2 })
    llm.sleep(2.1)
    local before = llm.sim.stats().connections_total
    assert(m:chat { user = "b", max_tokens = 2 })
    return llm.sim.stats().connections_total - before
  end
  T.eq(new_connections_after_idle({}), 0, "by default the idle connection is reused")
  T.eq(new_connections_after_idle({ max_idle_reuse = 1 }), 1, "with max_idle_reuse = 1 it is not")
  T.err(function() model("gpt-4o-mini", { max_idle_reuse = -1 }) end, "max_idle_reuse")
end)
