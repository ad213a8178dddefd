-- llm.record and llm.replay against the built-in simulator: what a
-- cassette holds (and never holds: keys), replays through the HTTP path
-- (chat, streams, embeddings, retries, a cut stream, a failure without a
-- response), identical requests in recorded order, ignored fields, the
-- policies for a request with no recording, timed against instant
-- replay, the replayer's own answers, and the errors for damaged and
-- newer cassettes.
local T = ...
local sqlite = require "_llm.sqlite"

local function cassette_path()
  local p = os.tmpname()
  os.remove(p)
  return p .. ".cassette"
end

local function remove(p)
  for _, s in ipairs { "", "-wal", "-shm" } do os.remove(p .. s) end
end

local function query(path, sql, ...)
  local db = assert(sqlite.open(path, "r"))
  local rows = assert(db:query(sql, ...))
  db:close()
  return rows
end

local function record(path, fn, opts)
  assert(llm.record.start(path, opts))
  local res = table.pack(pcall(fn))
  local summary = llm.record.stop()
  if not res[1] then error(res[2], 0) end
  return summary, table.unpack(res, 2, res.n)
end

local function replay(path, opts, fn)
  assert(llm.replay.start(path, opts))
  local res = table.pack(pcall(fn))
  local stats = llm.replay.stats()
  llm.replay.stop()
  if not res[1] then error(res[2], 0) end
  return stats, table.unpack(res, 2, res.n)
end

-- the simulator without delays, except where a test asks for them
local fast = { ["x-sim-profile"] = "zero" }

T.test("chat, stream and embedding calls replay with the recorded fields", function()
  local path = cassette_path()
  local m = llm.model { "gpt-4o-mini", headers = fast }
  local e = llm.model { "text-embedding-3-small", headers = fast }
  local function run()
    local r = assert(m:chat { user = "What is 17 + 25?", max_tokens = 10 })
    local s = assert(m:stream({ user = "Tell a short story", max_tokens = 40 }, { on_delta = function() end }))
    local v = assert(e:embed { "one", "two" })
    return r, s, v
  end
  local summary, r1, s1, v1 = record(path, run)
  T.eq(summary.calls, 3)
  T.eq(summary.exchanges, 3)
  local stats, r2, s2, v2 = replay(path, { replay = "instant" }, run)
  T.eq(stats.replayed, 3)
  T.eq(stats.server.served, 3)
  T.eq(r2.text, r1.text)
  T.eq(r2.usage, r1.usage)
  T.eq(r2.request_id, r1.request_id)
  T.eq(r2.replayed, true)
  T.eq(s2.text, s1.text)
  T.eq(s2.usage, s1.usage)
  T.eq(s2.finish_reason, s1.finish_reason)
  T.eq(#v2.vectors, 2)
  T.eq(v2.vectors[2][1], v1.vectors[2][1])
  -- what the file holds: the call log's columns, the answer, the pieces
  local calls = query(path, "SELECT kind, model, status, answer, prompt_tokens FROM calls ORDER BY id")
  T.eq(calls[1].kind, "chat")
  T.eq(calls[1].answer, r1.text)
  T.eq(calls[1].prompt_tokens, r1.usage.prompt_tokens)
  T.eq(calls[2].kind, "stream")
  T.eq(calls[3].kind, "embed")
  local ex = query(path, "SELECT status, chunks, length(body) AS n, headers FROM exchanges ORDER BY id")
  T.eq(ex[2].status, 200)
  local sum = 0
  for _, piece in ipairs(require("cjson").decode(ex[2].chunks)) do sum = sum + piece[2] end
  T.eq(sum, ex[2].n)
  T.ok(ex[2].headers:find('"content-type":"text/event-stream', 1, true), "the stream's content type is kept")
  remove(path)
end)

T.test("no API key or auth header is stored; scrubbed headers are left out", function()
  local path = cassette_path()
  local key = "sk-test-secret-key-0123456789"
  local m = llm.model { "gpt-4o-mini", provider = "openai", base_url = llm.sim.ensure(), api_key = key,
                        organization = "org-secret", headers = { ["x-sim-profile"] = "zero", ["x-team"] = "blue" } }
  record(path, function() assert(m:chat "Hello") end, { scrub_headers = { "x-team" } })
  local f = assert(io.open(path, "rb"))
  local bytes = f:read("a")
  f:close()
  T.eq(bytes:find(key, 1, true), nil)
  T.eq(bytes:find("org-secret", 1, true), nil)
  local h = query(path, "SELECT request_headers FROM exchanges")[1].request_headers
  T.eq(h:find("authorization", 1, true), nil)
  T.eq(h:find("x-team", 1, true), nil)
  T.ok(h:find("x-sim-profile", 1, true), "other request headers are kept")
  remove(path)
  -- a base URL with credentials in it
  local url = llm.sim.ensure():gsub("^http://", "http://user:pw-secret@")
  local m2 = llm.model { "gpt-4o-mini", provider = "openai", base_url = url, api_key = false, headers = fast }
  record(path, function() assert(m2:chat "Hello") end)
  f = assert(io.open(path, "rb"))
  T.eq(f:read("a"):find("pw-secret", 1, true), nil)
  f:close()
  local stats = replay(path, { replay = "instant" }, function() assert(m2:chat "Hello") end)
  T.eq(stats.replayed, 1)
  remove(path)
end)

T.test("identical requests replay their recorded answers in order", function()
  local path = cassette_path()
  local m = llm.model { "gpt-4o-mini", headers = fast }
  local req = { user = "Write a word.", temperature = 1, max_tokens = 5 }
  record(path, function() for _ = 1, 3 do assert(m:chat(req)) end end)
  -- make the three recorded answers tell themselves apart
  local db = assert(sqlite.open(path, "rw"))
  for i, row in ipairs(assert(db:query("SELECT id, body FROM exchanges ORDER BY id"))) do
    local body = require("cjson").decode(row.body)
    body.choices[1].message.content = "answer " .. i
    assert(db:exec("UPDATE exchanges SET body = ?, chunks = NULL WHERE id = ?",
      sqlite.blob(require("cjson").encode(body)), row.id))
  end
  db:close()
  local _, a, b, c = replay(path, { replay = "instant" }, function()
    return m:chat(req), m:chat(req), m:chat(req)
  end)
  T.eq({ a.text, b.text, c.text }, { "answer 1", "answer 2", "answer 3" })
  -- a fourth has no recording left
  local stats, r, err = replay(path, { replay = "instant" }, function()
    for _ = 1, 3 do assert(m:chat(req)) end
    return m:chat(req)
  end)
  T.eq(r, nil)
  T.eq(err.kind, "replay")
  T.ok(tostring(err.message):find("recorded 3 times and all were replayed", 1, true), tostring(err.message))
  T.eq(stats.missing, 1)
  remove(path)
end)

T.test("a request with no recording: error names the nearest and what differs; sim and live answer it", function()
  local path = cassette_path()
  local m = llm.model { "gpt-4o-mini", headers = fast }
  record(path, function()
    assert(m:chat { system = "Be brief.", user = "What is the capital of France?", temperature = 0 })
  end)
  local changed = { system = "Be brief.", user = "What is the capital of Spain?", temperature = 0.5 }
  local _, r, err = replay(path, { replay = "instant" }, function() return m:chat(changed) end)
  T.eq(r, nil)
  T.eq(err.kind, "replay")
  local msg = tostring(err.message)
  T.ok(msg:find("nearest recorded: call 1", 1, true), msg)
  T.ok(msg:find("body.temperature: recorded 0, now 0.5", 1, true), msg)
  T.ok(msg:find('body.messages[2].content: recorded "What is the capital of France?", now "What is the '
    .. 'capital of Spain?"', 1, true), msg)
  -- sim: the simulator answers, and the call counts as simulated
  local _, s = replay(path, { replay = "instant", missing = "sim" }, function() return assert(m:chat(changed)) end)
  T.eq(s.replayed, "sim")
  T.eq(s.simulated, true)
  T.ok(s.text ~= "", "an answer")
  -- live: the provider answers and the cassette gets the exchange
  local before = #query(path, "SELECT id FROM calls")
  local stats = replay(path, { replay = "instant", missing = "live" }, function() assert(m:chat(changed)) end)
  T.eq(stats.live, 1)
  T.eq(#query(path, "SELECT id FROM calls"), before + 1)
  -- ... so the next replay has it
  local st2, again = replay(path, { replay = "instant" }, function() return assert(m:chat(changed)) end)
  T.eq(st2.missing, 0)
  T.eq(again.replayed, true)
  remove(path)
end)

T.test("ignored fields do not take part in matching", function()
  local path = cassette_path()
  local m = llm.model { "gpt-4o-mini", headers = fast }
  local req = { user = "Hi", temperature = 0 }
  record(path, function() assert(m:chat(req)) end)
  -- the OpenAI `user` parameter (an end-user id) is ignored by default
  local tagged = m:with { defaults = { user = "customer-42" } }
  local stats = replay(path, { replay = "instant" }, function() assert(tagged:chat(req)) end)
  T.eq(stats.replayed, 1)
  -- ... not when nothing is
  local st2, r, err = replay(path, { replay = "instant", ignore = {} }, function() return tagged:chat(req) end)
  T.eq(r, nil)
  T.eq(err.kind, "replay")
  T.eq(st2.missing, 1)
  T.ok(tostring(err.message):find('body.user: recorded (absent), now "customer-42"', 1, true), tostring(err.message))
  -- and `seed` when asked
  record(path, function() assert(m:chat { user = "Hi", temperature = 0, seed = 1 }) end, { mode = "overwrite" })
  local st3 = replay(path, { replay = "instant", ignore = { "seed" } }, function()
    assert(m:chat { user = "Hi", temperature = 0, seed = 2 })
  end)
  T.eq(st3.replayed, 1)
  T.eq(req.user, "Hi")
  remove(path)
end)

T.test("retries, a cut stream and a failure without a response replay as recorded", function()
  local path = cassette_path()
  local retried = llm.model { "gpt-4o-mini", retry_scale = 0.01,
    headers = { ["x-sim-profile"] = "zero", ["x-sim-fault"] = "429", ["x-sim-fault-attempts"] = "1" } }
  local cut = llm.model { "gpt-4o-mini", max_retries = 0,
    headers = { ["x-sim-profile"] = "zero", ["x-sim-fault"] = "drop_mid_stream" } }
  local refused = llm.model { "gpt-4o-mini", provider = "openai", base_url = "http://127.0.0.1:9/v1",
    api_key = false, max_retries = 0 }
  local function run()
    local r = assert(retried:chat "Count to three.")
    local s, serr = cut:stream({ user = "Tell a long story", max_tokens = 50 }, { on_delta = function() end })
    local f, ferr = refused:chat "Hello"
    return r, s, serr, f, ferr
  end
  local _, r1, s1, serr1, f1, ferr1 = record(path, run)
  T.eq(r1.retries, 1)
  T.eq(s1, nil)
  T.eq(f1, nil)
  T.eq(#query(path, "SELECT id FROM exchanges WHERE call = 1"), 2)
  T.eq(query(path, "SELECT status FROM exchanges WHERE call = 3")[1].status, 0)
  local stats, r2, s2, serr2, f2, ferr2 = replay(path, { replay = "instant" }, run)
  T.eq(stats.replayed, 3)
  T.eq(r2.retries, 1)
  T.eq(r2.text, r1.text)
  T.eq(s2, nil)
  T.eq(serr2.kind, serr1.kind)
  T.eq(serr2.partial_text, serr1.partial_text)
  T.eq(f2, nil)
  T.eq(ferr2.kind, ferr1.kind)
  T.eq(stats.server.cut, 1)
  remove(path)
end)

T.test("timed replay keeps the recorded pace; instant does not wait", function()
  local path = cassette_path()
  local slow = llm.model { "gpt-4o-mini", headers = { ["x-sim-ttft-ms"] = "150", ["x-sim-tokens-per-s"] = "200" } }
  local function run()
    return assert(slow:stream({ user = "Tell a short story", max_tokens = 20 }, { on_delta = function() end }))
  end
  local _, rec = record(path, run)
  T.ok(rec.ttft_ms >= 140, "the simulator's TTFT")
  -- generous bounds, and up to three tries: a loaded machine wakes a
  -- task late by milliseconds, now and then by tens of them
  local function within(opts, scale, tol)
    local got
    for _ = 1, 3 do
      local _, r = replay(path, opts, run)
      got = r
      if math.abs(r.ttft_ms - rec.ttft_ms / scale) <= tol
          and math.abs(r.latency_ms - rec.latency_ms / scale) <= tol then
        return r
      end
    end
    error(("timed replay at %gx: TTFT %.1f / total %.1f ms, recorded %.1f / %.1f (scaled by %g)"):format(
      scale, got.ttft_ms, got.latency_ms, rec.ttft_ms, rec.latency_ms, scale))
  end
  local timed = within(nil, 1, 20)
  T.ok(timed.ttft_ms >= rec.ttft_ms - 5, "never early")
  within({ speed = 4 }, 4, 20)
  local _, instant = replay(path, { replay = "instant" }, run)
  T.ok(instant.latency_ms < rec.ttft_ms / 2, ("instant: %.1f ms"):format(instant.latency_ms))
  T.eq(instant.text, rec.text)
  remove(path)
end)

T.test("a timed replay keeps the times from the call's start, whatever it spends before sending", function()
  -- the replay's client may reach the send a little later than the
  -- recording's did (its matching, a collection, a busy loop): the
  -- recorded pieces still come when they came after the call began. A
  -- replay that waits much longer before sending (a what-if with other
  -- rate limits) counts from its own send, as a provider would.
  local path = cassette_path()
  local slow = llm.model { "gpt-4o-mini", headers = { ["x-sim-ttft-ms"] = "120", ["x-sim-tokens-per-s"] = "400" } }
  local function run()
    return assert(slow:stream({ user = "Tell a short story", max_tokens = 12 }, { on_delta = function() end }))
  end
  local _, rec = record(path, run)
  local calls = require "llm.calls"
  local stall_s = 0
  local function stall() if llm.replay.active() then llm.sleep(stall_s) end end
  calls.on_before(stall, 60)
  local function check(s, want_extra_ms, tol)
    stall_s = s
    local got
    for _ = 1, 3 do -- a loaded machine may be late now and then
      local _, r = replay(path, nil, run)
      got = r
      if math.abs(r.ttft_ms - rec.ttft_ms - want_extra_ms) <= tol
          and math.abs(r.latency_ms - rec.latency_ms - want_extra_ms) <= tol then return end
    end
    error(("a %.0f ms stall before the send: TTFT %.1f / total %.1f ms, recorded %.1f / %.1f, want %+.0f ms")
      :format(s * 1000, got.ttft_ms, got.latency_ms, rec.ttft_ms, rec.latency_ms, want_extra_ms))
  end
  local ok, err = pcall(function()
    check(0.012, 0, 6)   -- within the window: the recorded times
    check(0.15, 150, 25) -- far beyond it: from the replay's own send
  end)
  calls.off(stall)
  remove(path)
  if not ok then error(err, 0) end
end)

T.test("a timed replay paces the collector in small steps; instant replay and stop leave Lua's", function()
  -- allocations from a full collection until a new piece of garbage is
  -- finalized, with no pause: one cycle, whose length in allocation is
  -- what the step multiplier sets (deterministic: nothing else runs,
  -- nothing yields)
  local function kb_to_cycle()
    collectgarbage("incremental", 100, 0, 0) -- no pause: the count is the cycle's (0: as it is)
    collectgarbage("collect")
    local done = false
    setmetatable({}, { __gc = function() done = true end })
    local n, sink = 0, {}
    while not done and n < 400000 do
      n = n + 1
      sink[n % 64 + 1] = { n, n + 1, n + 2, n + 3 }
    end
    collectgarbage("incremental", 200, 0, 0) -- Lua's default pause
    return n
  end
  local ballast = {} -- a live heap for the cycle to mark and sweep
  for i = 1, 50000 do ballast[i] = { i } end
  local path = cassette_path()
  local m = llm.model { "gpt-4o-mini", headers = fast }
  record(path, function() return assert(m:chat "Name a colour.") end)
  local default = kb_to_cycle()
  local timed, instant
  replay(path, nil, function() timed = kb_to_cycle() end)
  replay(path, { replay = "instant" }, function() instant = kb_to_cycle() end)
  local after = kb_to_cycle()
  T.ok(timed > default * 1.5, ("timed: %d allocations to a cycle, Lua's default %d"):format(timed, default))
  T.ok(math.abs(instant - default) <= default * 0.1, ("instant %d, default %d"):format(instant, default))
  T.ok(math.abs(after - default) <= default * 0.1, ("after stop %d, default %d"):format(after, default))
  T.ok(#ballast == 50000)
  remove(path)
end)

T.test("a replay's index of a long run stays small in the Lua heap", function()
  -- it stays there for the whole replay, and every collection walks it
  -- (query rows and a table per event took 1.6-2.1 KB per call)
  local path = cassette_path()
  local m = llm.model { "gpt-4o-mini", headers = fast }
  local n = 400
  record(path, function()
    local items = {}
    for i = 1, n do items[i] = i end
    llm.map(items, function(i) return assert(m:chat { user = "Question number " .. i, max_tokens = 5 }) end,
      { concurrency = 16, progress = false })
  end)
  collectgarbage("collect")
  local before = collectgarbage("count")
  assert(llm.replay.start(path, { replay = "instant" }))
  collectgarbage("collect")
  local per_call = (collectgarbage("count") - before) * 1024 / n
  llm.replay.stop()
  remove(path)
  T.ok(per_call < 1200, ("%.0f bytes of index per recorded call (about 770 now)"):format(per_call))
end)

T.test("a replayed run can be recorded into another cassette", function()
  local a, b = cassette_path(), cassette_path()
  local m = llm.model { "gpt-4o-mini", headers = fast }
  local function run() return assert(m:chat "Name a colour."), assert(m:chat "Name a fruit.") end
  local _, x1, y1 = record(a, run)
  assert(llm.replay.start(a, { replay = "instant" }))
  assert(llm.record.start(b))
  local x2, y2 = run()
  llm.record.stop()
  llm.replay.stop()
  T.eq({ x2.text, y2.text }, { x1.text, y1.text })
  local ra = query(a, "SELECT answer FROM calls ORDER BY id")
  local rb = query(b, "SELECT answer FROM calls ORDER BY id")
  T.eq(rb, ra)
  T.eq(query(b, "SELECT count(*) AS n FROM exchanges")[1].n, 2)
  remove(a)
  remove(b)
end)

T.test("a replay that does not follow its recording skips what does not come, then stops ordering", function()
  local path = cassette_path()
  local m = llm.model { "gpt-4o-mini", headers = fast }
  record(path, function() for i = 1, 5 do assert(m:chat("Question " .. i)) end end)
  local order = require "llm.replay_order"
  local grace = order.GRACE
  order.GRACE = 0.1
  local ok, err = pcall(function()
    -- the second question first: the first's turn is skipped, then ordering resumes
    local stats = replay(path, { replay = "instant" }, function()
      assert(m:chat "Question 2")
      for i = 3, 5 do assert(m:chat("Question " .. i)) end
    end)
    T.eq(stats.replayed, 4)
    T.eq(stats.order.skipped, 1)
    T.eq(stats.order.given_up, false)
    -- the last one only: three skips, and the order is given up
    local t0 = llm.now()
    local st2 = replay(path, { replay = "instant" }, function() assert(m:chat "Question 5") end)
    T.eq(st2.replayed, 1)
    T.eq(st2.order.given_up, true)
    T.ok(llm.now() - t0 < 2, "a few grace periods, not more")
  end)
  order.GRACE = grace
  remove(path)
  if not ok then error(err, 0) end
end)

T.test("the replayer answers only replays: 400 without its header, 404 for an unknown exchange", function()
  local path = cassette_path()
  record(path, function() assert(llm.model({ "gpt-4o-mini", headers = fast }):chat "Hi") end)
  local server = assert(require("_llm.replay").start(path))
  local http = require "_llm.http"
  local r = assert(http.request { method = "POST", url = server:url() .. "/v1/chat/completions", body = "{}" })
  T.eq(r.status, 400)
  T.ok(r.body:find("x-llmrun-replay", 1, true), r.body)
  r = assert(http.request { method = "POST", url = server:url() .. "/v1/chat/completions", body = "{}",
                            headers = { "x-llmrun-replay: 999 0 0" } })
  T.eq(r.status, 404)
  T.ok(r.body:find("no exchange 999", 1, true), r.body)
  r = assert(http.request { method = "POST", url = server:url() .. "/x", body = "{}",
                            headers = { "x-llmrun-replay: 1 0 0" } })
  T.eq(r.status, 200)
  T.eq(r.headers["x-request-id"] ~= nil, true)
  server:stop()
  server:stop() -- twice is harmless
  remove(path)
end)

T.test("damaged, foreign, newer and missing cassettes are refused clearly", function()
  local path = cassette_path()
  local f = assert(io.open(path, "wb"))
  f:write(("not a database "):rep(100))
  f:close()
  local ok, err = llm.replay.start(path)
  T.eq(ok, nil)
  T.eq(err.kind, "cassette")
  T.eq(err.corrupt, true)
  T.ok(tostring(err.message):find("is not a readable cassette", 1, true), tostring(err.message))
  remove(path)
  -- an sqlite file of something else
  local db = assert(sqlite.open(path, "create"))
  assert(db:script("CREATE TABLE t (x)"))
  db:close()
  ok, err = llm.replay.start(path)
  T.eq(ok, nil)
  T.ok(tostring(err.message):find("not an llmrun cassette", 1, true), tostring(err.message))
  remove(path)
  -- a newer format
  record(path, function() assert(llm.model({ "gpt-4o-mini", headers = fast }):chat "Hi") end)
  db = assert(sqlite.open(path, "rw"))
  assert(db:exec("UPDATE meta SET value = '7' WHERE key = 'version'"))
  db:close()
  ok, err = llm.replay.start(path)
  T.eq(ok, nil)
  T.eq(err.newer, true)
  T.ok(tostring(err.message):find("is a version 7 cassette, written by a newer llmrun", 1, true), tostring(err.message))
  remove(path)
  -- a cut-off file: the first pages only
  record(path, function()
    local m = llm.model { "gpt-4o-mini", headers = fast }
    for i = 1, 30 do assert(m:chat("Tell me about the number " .. i)) end
  end)
  local whole = assert(io.open(path, "rb")):read("a")
  f = assert(io.open(path, "wb"))
  f:write(whole:sub(1, #whole // 3))
  f:close()
  ok, err = llm.replay.start(path)
  T.eq(ok, nil)
  T.eq(err.kind, "cassette")
  remove(path)
  ok, err = llm.replay.start(path)
  T.eq(ok, nil)
  T.eq(err.missing, true)
end)

T.test("recording: misuse raises, an existing cassette is kept unless asked", function()
  local path = cassette_path()
  record(path, function() end)
  local ok, err = llm.record.start(path)
  T.eq(ok, nil)
  T.eq(err.exists, true)
  T.ok(llm.record.start(path, { mode = "overwrite" }))
  T.err(function() llm.record.start(path) end, "already recording into")
  llm.record.stop()
  T.err(function() llm.record.start(path, { mode = "sideways" }) end, "mode must be")
  T.err(function() llm.record.start(path, { colour = "red" }) end, "unknown option 'colour'")
  assert(llm.replay.start(path))
  T.err(function() llm.record.start(path, { mode = "overwrite" }) end, "is the cassette being replayed")
  llm.replay.stop()
  T.err(function() llm.replay.start(path, { replay = "slow" }) end, "replay must be")
  T.err(function() llm.replay.start(path, { speed = 0 }) end, "speed must be a number > 0")
  T.err(function() llm.replay.start(path, { missing = "ask" }) end, "missing must be")
  remove(path)
end)
