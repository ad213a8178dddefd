-- llm.cache with models over HTTP against the scripted server: the key,
-- exact hits and what they report, the sampling policy, what is never
-- cached, streams from the cache, identical requests in flight, the
-- embedding cache, TTL, namespaces and statistics (../shared/RELIABILITY.md
-- §A 11, 27, 42).
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local tmpdb = T.tmpdb
local remove_db = T.remove_db
local script = mock.script

local KEY = "sk-test-CACHE-SECRET-0123456789"

local function chat_body(text, usage)
  return cjson.encode {
    id = "chatcmpl-1", object = "chat.completion", model = "gpt-4o-mini-2024-07-18",
    choices = { { index = 0, message = { role = "assistant", content = text }, finish_reason = "stop" } },
    usage = usage or { prompt_tokens = 12, completion_tokens = 5, total_tokens = 17 },
  }
end

-- the mock unescapes \n in a script line: JSON escapes are doubled so the
-- server sends them as JSON (a raw line break inside a string is not JSON)
local function reply(status, body, extra)
  return table.concat({ "status " .. status, "header Content-Type: application/json",
                        extra or "", "body " .. body:gsub("\\", "\\\\") }, "\n")
end

local function model_for(srv, cache, extra)
  local spec = { name = "gpt-4o-mini", provider = "openai", base_url = srv.url .. "/v1",
                 api_key = KEY, retry_scale = 0.01, cache = cache }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return llm.model(spec)
end

local function open(extra)
  local opts = { path = tmpdb() }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return assert(llm.cache.open(opts)), opts.path
end

-- ---- the key --------------------------------------------------------------------------

T.test("canonical form: key order, number spelling, escapes", function()
  local canonical = llm.cache.canonical
  T.eq(canonical { b = 1, a = { z = true, y = { 3, 2.5, "x" } } },
       '{"a":{"y":[3,2.5,"x"],"z":true},"b":1}')
  T.eq(canonical { t = 1.0 }, canonical { t = 1 })
  T.eq(canonical { t = 0.7 }, '{"t":0.7}')
  T.eq(canonical { t = 0.1 + 0.2 }, '{"t":0.30000000000000004}')
  T.eq(canonical { t = -0.0 }, '{"t":0}')
  T.eq(canonical { s = 'q"\\\n\1é' }, '{"s":"q\\"\\\\\\n\\u0001é"}')
  T.eq(canonical {}, "{}")
  T.eq(canonical { cjson.null }, "[null]")
  local none, why = canonical { f = print }
  T.eq(none, nil)
  T.eq({ why.kind, why.status }, { "cache", "uncacheable" })
  T.ok(why.message:find("function", 1, true))
  local cyc = {}
  cyc.self = cyc
  T.eq((canonical(cyc)), nil)
  -- sequences are arrays; anything else an object with number keys as text
  T.eq(canonical { 1, 2, 3 }, "[1,2,3]")
  T.eq(canonical { [1] = "a", [3] = "c" }, '{"1":"a","3":"c"}')
  T.eq(canonical { 1, 2, x = 3 }, '{"1":1,"2":2,"x":3}')
  T.eq(canonical { [2.5] = true, [-1] = false }, '{"-1":false,"2.5":true}')
  T.eq(select(2, canonical { [1] = "n", ["1"] = "s" }).message,
       "cannot be cached: two keys with the same text")
  T.eq(select(2, canonical { [true] = 1 }).message,
       "cannot be cached: a table key that is neither a string nor a number")
  T.eq(canonical { s = "\127\0x" }, '{"s":"\\u007f\\u0000x"}')
  T.eq(canonical(1e300), "1e+300")
  T.eq(canonical(2^53), "9007199254740992")
  T.eq(canonical(0 / 0), '"NaN"')
  T.eq(canonical(-math.huge), '"-Infinity"')
  -- byte order of keys, objects of more than 8 keys, big texts
  local many, want = {}, {}
  for i = 20, 1, -1 do many["k" .. i] = i end
  local names = {}
  for i = 1, 20 do names[i] = "k" .. i end
  table.sort(names)
  for i, n in ipairs(names) do want[i] = ('"%s":%d'):format(n, tonumber(n:sub(2))) end
  T.eq(canonical(many), "{" .. table.concat(want, ",") .. "}")
  T.eq(canonical { B = 1, a = 2, ["é"] = 3, [""] = 4 }, '{"":4,"B":1,"a":2,"é":3}')
  local big = ("x"):rep(3000000)
  T.eq(#canonical { big }, 3000004)
  local deep = {}
  local cur = deep
  for _ = 1, 100 do cur.d = {} cur = cur.d end
  T.eq(select(2, canonical(deep)).message, "cannot be cached: nested too deeply")
end)

T.test("reordered JSON keys give the same key; any parameter change another", function()
  local m = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = "http://127.0.0.1:9/v1",
                        api_key = KEY }
  local key = llm.cache.key
  -- the same request written three ways (Lua tables have no key order:
  -- build them in different insertion orders, and from JSON text)
  local a = { messages = { { role = "user", content = "hi" } }, temperature = 0, max_tokens = 20,
              response_format = { type = "json_object", strict = true } }
  local b = {}
  b.response_format = { strict = true }
  b.response_format.type = "json_object"
  b.max_tokens = 20.0
  b.temperature = 0.0
  b.messages = { { content = "hi", role = "user" } }
  local c = cjson.decode('{"max_tokens":20,"response_format":{"strict":true,"type":"json_object"},'
    .. '"temperature":0,"messages":[{"content":"hi","role":"user"}]}')
  local k = key(m, a)
  T.eq(#k, 64)
  T.eq(key(m, b), k)
  T.eq(key(m, c), k)
  -- per-call options, API keys and headers are not part of it
  T.eq(key(m:with { api_key = "sk-other", headers = { ["X-Api-Key"] = "x" }, timeout = 5 }, a), k)
  -- every parameter change gives another key
  local function changed(f)
    local r = cjson.decode(cjson.encode(a))
    f(r)
    return key(m, r)
  end
  local seen = { [k] = "original" }
  local variants = {
    temperature = function(r) r.temperature = 0.2 end,
    max_tokens = function(r) r.max_tokens = 21 end,
    content = function(r) r.messages[1].content = "hi!" end,
    role = function(r) r.messages[1].role = "system" end,
    extra_message = function(r) r.messages[2] = { role = "assistant", content = "x" } end,
    nested = function(r) r.response_format.strict = false end,
    new_param = function(r) r.top_p = 1 end,
    seed = function(r) r.seed = 1 end,
    stop = function(r) r.stop = { "a", "b" } end,
    stop_order = function(r) r.stop = { "b", "a" } end,
    tools = function(r) r.tools = { { type = "function", ["function"] = { name = "f" } } } end,
    system = function(r) table.insert(r.messages, 1, { role = "system", content = "s" }) end,
  }
  for name, f in pairs(variants) do
    local kk = changed(f)
    T.ok(seen[kk] == nil, name .. " gave the key of " .. tostring(seen[kk]))
    seen[kk] = name
  end
  -- model, provider and endpoint are part of it
  for name, mm in pairs {
    model = m:with { name = "gpt-4o" },
    endpoint = m:with { cfg = { base_url = "http://127.0.0.1:10/v1" } },
    provider = m:with { provider = "ollama" },
    defaults = m:with { defaults = { presence_penalty = 0.5 } },
  } do
    local kk = key(mm, a)
    T.ok(seen[kk] == nil, name .. " gave the key of " .. tostring(seen[kk]))
    seen[kk] = name
  end
  -- a streamed and a buffered request share the key
  T.eq(key(m, { messages = a.messages, temperature = 0, max_tokens = 20, stream = true,
                response_format = a.response_format }), k)
end)

-- ---- exact hits ------------------------------------------------------------------------

T.test("exact hit: one upstream call, latency is the lookup, saved is the original", function()
  local srv = mock.start(script(reply(200, chat_body("Two, three, five."), "sleep 0.2")))
  local c, path = open()
  local m = model_for(srv, c)
  local r1 = assert(m:chat { user = "Name three primes.", temperature = 0 })
  T.eq(r1.cached, false)
  T.ok(r1.latency_ms >= 200)
  local r2 = assert(m:chat { user = "Name three primes.", temperature = 0 })
  T.eq(r2.cached, "exact")
  T.eq(r2.text, "Two, three, five.")
  T.eq(r2.finish_reason, "stop")
  T.eq(#srv:requests(), 1)
  T.ok(r2.latency_ms < 50, "a hit takes " .. r2.latency_ms .. " ms")
  T.eq(r2.ttft_ms, r2.latency_ms)
  T.eq(r2.usage.prompt_tokens, 0)
  T.eq(r2.usage.completion_tokens, 0)
  T.near(r2.saved.latency_ms, r1.latency_ms, 0.01)
  T.eq(r2.saved.usage.prompt_tokens, 12)
  T.eq(r2.saved.usage.completion_tokens, 5)
  T.eq(r2.saved.model, "gpt-4o-mini-2024-07-18")
  T.ok(r2.cached_at and math.abs(r2.cached_at - llm.wallclock()) < 60)
  -- with prices (llm.pricing): a hit costs 0 and says what it saved
  T.ok(r1.cost and r1.cost > 0, "gpt-4o-mini has a price")
  T.eq(r2.cost, 0)
  T.near(r2.saved.cost, r1.cost, 1e-12)
  T.near(c:stats().cost_saved, r1.cost, 1e-12)
  T.eq(c:stats().priced_hits, 1)
  -- another process (a fresh connection) finds it on disk
  local st, out = T.llmrun(("-e 'local c = llm.cache.open{path=%q}; "
    .. "local m = llm.model{name=\"gpt-4o-mini\", provider=\"openai\", base_url=%q, cache=c}; "
    .. "local r = m:chat{user=\"Name three primes.\", temperature=0}; print(r.cached, r.text)'")
    :format(path, srv.url .. "/v1"))
  T.eq(st, 0)
  T.eq(out, "exact\tTwo, three, five.\n")
  T.eq(#srv:requests(), 1)
  -- opting out per call
  local r3 = assert(m:chat({ user = "Name three primes.", temperature = 0 }, { cache = false }))
  T.eq(r3.cached, false)
  T.eq(#srv:requests(), 2)
  -- m:with_cache and cache = false
  local plain = m:with_cache(false)
  T.eq(plain.cache, nil)
  T.eq(assert(plain:chat { user = "Name three primes.", temperature = 0 }).cached, false)
  T.eq(assert(llm.model({ name = "gpt-4o-mini", provider = "openai", base_url = srv.url .. "/v1" })
    :with_cache(c):chat { user = "Name three primes.", temperature = 0 }).cached, "exact")
  T.err(function() m:with_cache(42) end, "cache option must be a cache")
  T.err(function() llm.model { name = "x", provider = "openai", api_key = "k", cache = "yes" } end,
        "cache option must be a cache")
  c:close()
  remove_db(path)
  srv:stop()
end)

T.test("a hit keeps the refusal, reasoning text and system fingerprint", function()
  local body = cjson.encode {
    id = "chatcmpl-2", object = "chat.completion", model = "deepseek-reasoner", system_fingerprint = "fp_1",
    choices = { { index = 0, finish_reason = "stop", message = { role = "assistant", content = cjson.null,
      refusal = "I can't help with that.", reasoning_content = "The user asks..." } } },
    usage = { prompt_tokens = 5, completion_tokens = 9, total_tokens = 14 } }
  local srv = mock.start(script(reply(200, body)))
  local c, path = open()
  local m = model_for(srv, c)
  local r1 = assert(m:chat { user = "x", temperature = 0 })
  local r2 = assert(m:chat { user = "x", temperature = 0 })
  T.eq(r2.cached, "exact")
  T.eq({ r2.refusal, r2.reasoning, r2.system_fingerprint }, { r1.refusal, r1.reasoning, "fp_1" })
  T.eq(r2.refusal, "I can't help with that.")
  srv:stop()
  c:close()
  remove_db(path)
end)

T.test("hits of one entry each get tables of their own; a changed entry is read anew", function()
  -- a lookup reuses the document it decoded last time while the stored
  -- bytes are the same (llm.cache `decoded`): nothing a caller does to
  -- one hit may show in the next, and new bytes are decoded again
  local srv = mock.start(script(reply(200, chat_body("Two, three, five.")),
                                reply(200, chat_body("Seven.", { prompt_tokens = 3, completion_tokens = 1,
                                                                 total_tokens = 4 }))))
  local c, path = open()
  local m = model_for(srv, c)
  local q = { user = "Name three primes.", temperature = 0 }
  assert(m:chat(q))
  local r2, r3 = assert(m:chat(q)), assert(m:chat(q))
  T.eq({ r2.cached, r3.cached }, { "exact", "exact" })
  T.ok(r2.saved.usage ~= r3.saved.usage, "each hit has its own usage table")
  r2.saved.usage.prompt_tokens = 999
  r2.text = "changed"
  local r4 = assert(m:chat(q))
  T.eq(r4.saved.usage.prompt_tokens, 12)
  T.eq(r4.text, "Two, three, five.")
  -- the entry changes (cleared, answered anew): the new bytes are read
  c:clear()
  T.eq(assert(m:chat(q)).cached, false)
  local r6 = assert(m:chat(q))
  T.eq({ r6.cached, r6.text, r6.saved.usage.prompt_tokens }, { "exact", "Seven.", 3 })
  T.eq(#srv:requests(), 2)
  c:close()
  remove_db(path)
  srv:stop()
end)

T.test("a request given as its bytes (a gateway's): its key is the canonical one, per model", function()
  -- call.opts.wire: the cache keeps the key of the bytes per model; it
  -- must be the key the request's canonical text gives, and another model
  -- sent the same bytes must not share it
  local forward = require "llm.proxy_forward"
  local srv = mock.start(script(reply(200, chat_body("Two, three, five.")), reply(200, chat_body("Seven."))))
  local c, path = open()
  local m = model_for(srv, c)
  local other = model_for(srv, c, { name = "gpt-4o" })
  local wire = '{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":"Name three primes."}]}'
  local function body() return { temperature = 0, messages = { { role = "user", content = "Name three primes." } } } end
  local r1 = assert(forward.chat(m, body(), wire, { wire = wire }))
  T.eq(r1.cached, false)
  local r2 = assert(forward.chat(m, body(), wire, { wire = wire }))
  T.eq({ r2.cached, r2.text }, { "exact", "Two, three, five." })
  -- the same entry as the request made by a script
  T.eq(assert(m:chat { user = "Name three primes.", temperature = 0 }).cached, "exact")
  -- the same bytes to another model: its own key, a miss
  local r3 = assert(forward.chat(other, body(), wire, { wire = wire }))
  T.eq({ r3.cached, r3.text }, { false, "Seven." })
  T.eq(#srv:requests(), 2)
  c:close()
  remove_db(path)
  srv:stop()
end)

T.test("the API key is never in the database file", function()
  local srv = mock.start(script(reply(200, chat_body("ok"))))
  local c, path = open()
  local m = model_for(srv, c, { headers = { ["X-Api-Key"] = KEY .. "-header" },
                                organization = "org-SECRETORG" })
  for i = 1, 5 do
    assert(m:chat { user = "question " .. i, temperature = 0 })
  end
  T.ok(#srv:requests() >= 5)
  T.eq(srv:requests()[1].headers["authorization"], "Bearer " .. KEY) -- it was sent
  c:close()
  local found = 0
  for _, suffix in ipairs { "", "-wal", "-shm" } do
    local f = io.open(path .. suffix, "rb")
    if f then
      local bytes = f:read("a")
      f:close()
      for _, secret in ipairs { KEY, "SECRETORG", "CACHE-SECRET" } do
        if bytes:find(secret, 1, true) then found = found + 1 end
      end
    end
  end
  T.eq(found, 0)
  -- the prompt itself is not stored either (only its hash)
  local f = assert(io.open(path, "rb"))
  T.eq(f:read("a"):find("question 1", 1, true), nil)
  f:close()
  remove_db(path)
  srv:stop()
end)

T.test("sampled requests are cached only on opt-in; no temperature or a seed is cached", function()
  local srv = mock.start(script(reply(200, chat_body("a sample"))))
  local c, path = open()
  local m = model_for(srv, c)
  for _ = 1, 2 do assert(m:chat { user = "tell a joke", temperature = 0.8 }) end
  T.eq(#srv:requests(), 2, "temperature 0.8: not cached")
  T.eq(c:stats().skipped, 2)
  for _ = 1, 2 do assert(m:chat { user = "tell a joke", temperature = 0.8, seed = 7 }) end
  T.eq(#srv:requests(), 3, "a seed makes the sample reproducible: cached")
  for _ = 1, 2 do assert(m:chat "tell a joke") end
  T.eq(#srv:requests(), 4, "no temperature: cached")
  local sampled = c:namespace("sampled")
  sampled = llm.cache.open { path = path, namespace = "sampled", sampled = true }
  local ms = m:with_cache(sampled)
  for _ = 1, 2 do assert(ms:chat { user = "tell a joke", temperature = 0.8 }) end
  T.eq(#srv:requests(), 5, "sampled = true caches it")
  -- temperature as a model default counts too
  local mt = model_for(srv, c, { defaults = { temperature = 1 } })
  for _ = 1, 2 do assert(mt:chat "another joke") end
  T.eq(#srv:requests(), 7)
  c:close()
  remove_db(path)
  srv:stop()
end)

T.test("errors, partial and truncated streams are never cached", function()
  local sse = "status 200\nheader Content-Type: text/event-stream\nchunked\n"
  local function chunk(t)
    return "chunk data: " .. cjson.encode { choices = { { index = 0, delta = { content = t } } } } .. "\\n\\n"
  end
  local srv = mock.start(script(
    reply(500, '{"error":{"message":"boom"}}'),
    sse .. chunk("partial ") .. '\nchunk data: {"error":{"message":"mid-stream"}}\\n\\n\nend',
    sse .. chunk("cut") .. "\nend",
    reply(200, chat_body("finally"))))
  local c, path = open()
  local m = model_for(srv, c, { max_retries = 0 })
  local r, err = m:chat "q"
  T.eq(r, nil)
  T.eq(err.status, 500)
  local r2, err2 = m:stream("q", { on_delta = function() end })
  T.eq(r2, nil)
  T.eq(err2.partial_text, "partial ")
  local r3, err3 = m:stream("q", { on_delta = function() end })
  T.eq(r3, nil)
  T.eq(err3.truncated, true)
  local r4 = assert(m:chat "q")
  T.eq(r4.cached, false)
  T.eq(r4.text, "finally")
  T.eq(#srv:requests(), 4, "every failure went upstream again")
  T.eq(assert(m:chat "q").cached, "exact")
  local s = c:stats()
  T.eq(s.stores, 1)
  T.eq(s.misses, 4)
  T.eq(s.exact_hits, 1)
  c:close()
  remove_db(path)
  srv:stop()
end)

-- ---- streams ------------------------------------------------------------------------------

T.test("a hit on m:stream replays the text as deltas; chat and stream share entries", function()
  local srv = mock.start(script(reply(200, chat_body("One two  three.\nFour"), "sleep 0.3")))
  local c, path = open()
  local m = model_for(srv, c)
  assert(m:chat { user = "count", temperature = 0 })
  local s = m:stream { user = "count", temperature = 0 }
  local parts = {}
  for d in s do
    parts[#parts + 1] = d.text
    T.eq(d.cached, true)
  end
  T.eq(parts, { "One", " two", "  three.", "\nFour" })
  local r = s:result()
  T.eq(r.cached, "exact")
  T.eq(r.text, "One two  three.\nFour")
  T.eq(r.replay, nil)
  -- on_delta
  local seen = {}
  local r2 = assert(m:stream({ user = "count", temperature = 0 }, { on_delta = function(d) seen[#seen + 1] = d.text end }))
  T.eq(table.concat(seen), "One two  three.\nFour")
  T.eq(r2.cached, "exact")
  -- breaking out early is fine
  for _ in m:stream { user = "count", temperature = 0 } do break end
  -- with the recorded timing: about the original's 300 ms
  local t0 = llm.now()
  local first
  local rt = assert(m:stream({ user = "count", temperature = 0 }, { replay = "timed",
    on_delta = function() first = first or llm.now() end }))
  local took = llm.now() - t0
  T.ok(took >= 0.25 and took < 1.5, "timed replay took " .. took .. " s")
  T.ok(first - t0 >= 0.25, "first delta at its TTFT")
  T.ok(rt.latency_ms < 50, "latency stays the lookup time")
  T.eq(#srv:requests(), 1)
  c:close()
  remove_db(path)
  srv:stop()
end)

T.test("a streamed answer is stored and answers m:chat", function()
  local function chunk(t)
    return "chunk data: " .. cjson.encode { choices = { { index = 0, delta = { content = t } } } } .. "\\n\\n"
  end
  local srv = mock.start(script(table.concat({ "status 200", "header Content-Type: text/event-stream",
    "chunked", chunk("Hel"), chunk("lo"),
    "chunk data: " .. cjson.encode { choices = {}, usage = { prompt_tokens = 3, completion_tokens = 2 } } .. "\\n\\n",
    "chunk data: [DONE]\\n\\n", "end" }, "\n")))
  local c, path = open()
  local m = model_for(srv, c)
  local r = assert(m:stream("hi", { on_delta = function() end }))
  T.eq(r.text, "Hello")
  local h = assert(m:chat "hi")
  T.eq(h.cached, "exact")
  T.eq(h.text, "Hello")
  T.eq(h.saved.usage.completion_tokens, 2)
  T.eq(#srv:requests(), 1)
  c:close()
  remove_db(path)
  srv:stop()
end)

-- ---- in flight ----------------------------------------------------------------------------

T.test("identical concurrent requests make exactly one upstream call", function()
  local srv = mock.start(script(reply(200, chat_body("shared answer"), "sleep 0.3")))
  local c, path = open()
  local m = model_for(srv, c)
  local results = llm.map({ 1, 2, 3, 4, 5, 6, 7, 8 }, function(i)
    if i % 2 == 0 then
      return m:stream({ user = "same question", temperature = 0 }, { on_delta = function() end })
    end
    return m:chat { user = "same question", temperature = 0 }
  end, { concurrency = 8 })
  T.eq(#srv:requests(), 1)
  local fresh, shared = 0, 0
  for _, r in ipairs(results) do
    T.eq(r.text, "shared answer")
    if r.cached == false then fresh = fresh + 1 end
    if r.shared then
      shared = shared + 1
      T.eq(r.cached, "exact")
      T.eq(r.usage.completion_tokens, 0)
      T.eq(r.saved.usage.completion_tokens, 5)
    end
  end
  T.eq({ fresh, shared }, { 1, 7 })
  T.eq(c:stats().shared_hits, 7)
  -- different requests are not held back by each other
  local srv2 = mock.start(script(reply(200, chat_body("x"), "sleep 0.2")))
  local m2 = model_for(srv2, c)
  local t0 = llm.now()
  llm.map({ 1, 2, 3, 4 }, function(i) return m2:chat { user = "q" .. i, temperature = 0 } end)
  T.eq(#srv2:requests(), 4)
  T.ok(llm.now() - t0 < 0.6, "ran in parallel")
  c:close()
  remove_db(path)
  srv:stop()
  srv2:stop()
end)

T.test("in flight: a failing leader hands over; a cancelled one frees its waiters", function()
  local srv = mock.start(script(reply(500, '{"error":{"message":"first fails"}}', "sleep 0.2"),
                                reply(200, chat_body("second works"), "sleep 0.2")))
  local c, path = open()
  local m = model_for(srv, c, { max_retries = 0 })
  local results = llm.map({ 1, 2, 3, 4 }, function()
    local r, err = m:chat { user = "flaky", temperature = 0 }
    return r and r.text or ("error: " .. err.message)
  end)
  table.sort(results)
  T.eq(results, { "error: first fails", "second works", "second works", "second works" })
  T.eq(#srv:requests(), 2)
  srv:stop()

  srv = mock.start(script(reply(200, chat_body("slow"), "sleep 0.5")))
  m = model_for(srv, c)
  local leader = llm.spawn(function() return m:chat { user = "cancel me", temperature = 0 } end)
  llm.sleep(0.05)
  local waiter = llm.spawn(function() return m:chat { user = "cancel me", temperature = 0 } end)
  llm.sleep(0.05)
  leader:cancel()
  local ok, r = waiter:wait()
  T.ok(ok)
  T.eq(r.text, "slow")
  T.eq(r.cached, false, "the waiter made the call itself")
  T.eq(#srv:requests(), 2)
  -- the same task asking twice while its own stream is open does not wait on itself
  local s1 = m:stream { user = "own stream", temperature = 0 }
  local r2 = assert(m:chat { user = "own stream", temperature = 0 })
  T.eq(r2.text, "slow")
  s1:close()
  c:close()
  remove_db(path)
  srv:stop()
end)

-- ---- embeddings ---------------------------------------------------------------------------

local function embed_reply(vectors)
  local data = {}
  for i, v in ipairs(vectors) do data[i] = { object = "embedding", index = i - 1, embedding = v } end
  return reply(200, cjson.encode { object = "list", data = data, model = "text-embedding-3-small",
                                   usage = { prompt_tokens = 4 * #vectors, total_tokens = 4 * #vectors } })
end

T.test("embeddings: only the missing texts go upstream, reassembled in order", function()
  local srv = mock.start(script(
    embed_reply { { 1, 0, 0.5 }, { 0, 1, 0.25 } },         -- a, b
    embed_reply { { 0.5, 0.5, 0 }, { 0, 0, 1 } },          -- c, d
    embed_reply { { 9, 9, 9 } }))                          -- a at 2 dimensions (another entry)
  local c, path = open()
  local m = model_for(srv, c, { name = "text-embedding-3-small" })
  local r1 = assert(m:embed { "a", "b" })
  T.eq(r1.cached, false)
  local tokens_before = c:stats().tokens_saved
  local r2 = assert(m:embed { "c", "a", "d", "b" })
  T.eq(r2.cached, false)
  T.eq(r2.cached_vectors, 2)
  T.eq(c:stats().tokens_saved - tokens_before, 2, "a and b were not sent")
  T.eq(#srv:requests(), 2)
  T.eq(cjson.decode(srv:requests()[2].body).input, { "c", "d" })
  local function approx(v, w)
    T.eq(#v, #w)
    for i = 1, #w do T.near(v[i], w[i], 1e-6) end
  end
  approx(r2.vectors[1], { 0.5, 0.5, 0 })
  approx(r2.vectors[2], { 1, 0, 0.5 })
  approx(r2.vectors[3], { 0, 0, 1 })
  approx(r2.vectors[4], { 0, 1, 0.25 })
  local r3 = assert(m:embed { "d", "c", "b", "a" })
  T.eq(r3.cached, "exact")
  T.eq(r3.usage.prompt_tokens, 0)
  -- what was saved, counted by the tokenizer: one token per text here
  T.eq(llm.tokens.count("d", "text-embedding-3-small"), 1)
  T.eq(r3.saved.usage.prompt_tokens, 4)
  T.ok(r3.latency_ms < 50)
  approx(r3.vectors[4], { 1, 0, 0.5 })
  T.eq(#srv:requests(), 2)
  local r4 = assert(m:embed("a", { dimensions = 2 }))
  T.eq(r4.cached, false)
  T.eq(#srv:requests(), 3)
  T.eq(assert(m:embed("a", { dimensions = 2 })).cached, "exact")
  -- another model does not share vectors
  local other = assert(m:with { name = "text-embedding-3-large" }:embed("a"))
  T.eq(other.cached, false)
  c:close()
  remove_db(path)
  srv:stop()
end)

-- ---- TTL, namespaces, statistics --------------------------------------------------------------

T.test("TTL: an entry expires", function()
  local srv = mock.start(script(reply(200, chat_body("fresh"))))
  local c, path = open { ttl = 0.3 }
  local m = model_for(srv, c)
  assert(m:chat "q")
  T.eq(assert(m:chat "q").cached, "exact")
  llm.sleep(0.4)
  T.eq(assert(m:chat "q").cached, false)
  T.eq(#srv:requests(), 2)
  c:close()
  remove_db(path)
  srv:stop()
end)

T.test("namespaces, clear and statistics", function()
  local srv = mock.start(script(reply(200, chat_body("n"), "sleep 0.05")))
  local c, path = open()
  local a = model_for(srv, c)
  local b = model_for(srv, c:namespace "other")
  assert(a:chat "q")
  T.eq(assert(a:chat "q").cached, "exact")
  T.eq(assert(b:chat "q").cached, false, "namespaces are separate")
  T.eq(assert(b:chat "q").cached, "exact")
  local s = c:stats()
  T.eq({ s.hits, s.misses, s.exact_hits, s.namespace }, { 1, 1, 1, "default" })
  T.near(s.hit_rate, 0.5, 1e-9)
  T.eq(s.tokens_saved, 17)
  T.ok(s.time_saved_ms > 30)
  T.eq(c:clear(), 1)
  T.eq(assert(a:chat "q").cached, false)
  T.eq(assert(b:chat "q").cached, "exact", "clearing one namespace leaves the others")
  T.eq(c:stats().hits, 0)
  -- all-time numbers survive the process
  c:close()
  local st, out = T.llmrun(("-e 'local c = llm.cache.open{path=%q, namespace=\"other\"}; "
    .. "local s = c:stats{all_time=true}; print(s.hits, s.misses, s.entries)'"):format(path))
  T.eq(st, 0)
  T.eq(out, "2\t1\t1\n")
  c = llm.cache.open { path = path }
  T.eq(c:clear { namespace = "*" }, 2)
  c:close()
  remove_db(path)
  srv:stop()
end)

T.test("misuse raises", function()
  T.err(function() llm.cache.open { pth = "x" } end, "unknown option 'pth'")
  T.err(function() llm.cache.open { ttl = "1h" } end, "must be a number")
  T.err(function() llm.cache.open { ttl = -1 } end, "ttl must be >= 0")
  T.err(function() llm.cache.open { replay = "slow" } end, "replay must be")
  T.err(function() llm.cache.semantic { threshold = 0.9 } end, "embed must be")
  local c, path = open()
  T.err(function() c:namespace "" end, "non-empty string")
  c:close()
  c:close()
  T.err(function() c:clear() end, "closed")
  remove_db(path)
end)

T.test("embeddings: a batch of hundreds of texts stores and reads back (Lua stack use)", function()
  -- storing n vectors once needed two stack slots per vector and reserved
  -- one: from about 45 texts on it wrote past the Lua stack
  local c, path = open()
  local m = llm.model { name = "text-embedding-3-small", headers = { ["x-sim-profile"] = "zero" } }
    :with_cache(c)
  local texts = {}
  for i = 1, 400 do texts[i] = "question number " .. i end
  local first = assert(m:embed(texts))
  local again = assert(m:embed(texts))
  T.eq(again.cached, "exact")
  T.eq(#again.vectors, 400)
  for _, i in ipairs { 1, 200, 400 } do
    for d = 1, 8 do T.near(again.vectors[i][d], first.vectors[i][d], 1e-6) end
  end
  collectgarbage("collect")
  c:close()
  remove_db(path)
end)

T.test("write_delay: puts wait in memory, seen here at once and elsewhere once written together", function()
  local C = require "_llm.cache"
  local path = tmpdb()
  -- no memory layer, so a get here is answered by the waiting puts themselves
  local a = assert(C.open { path = path, memory_bytes = 0, write_delay = 0.05 })
  local b = assert(C.open { path = path, memory_bytes = 0 }) -- another connection: another process
  local k1, k2, k3, k4 = C.sha256("1"), C.sha256("2"), C.sha256("3"), C.sha256("4")
  T.ok(a:put("ns", k1, "v1"))
  T.eq((a:get("ns", k1)), "v1")
  T.eq(b:get("ns", k1), nil) -- not written yet
  llm.sleep(0.25)
  T.eq((b:get("ns", k1)), "v1") -- the timer wrote it
  -- a newer value replaces a waiting one; any other write goes after them
  T.ok(a:put("ns", k2, "v2"))
  T.ok(a:put("ns", k2, "v2 again"))
  T.eq((a:get("ns", k2)), "v2 again")
  T.ok(a:delete("ns", k1))
  T.eq(b:get("ns", k1), nil)
  T.eq((b:get("ns", k2)), "v2 again")
  -- the counts include what waits; close writes what waits
  T.ok(a:put("ns", k3, "v3"))
  T.eq(a:info().entries, 2)
  T.ok(a:put("ns", k4, "v4"))
  T.eq(b:get("ns", k4), nil)
  a:close()
  T.eq((b:get("ns", k4)), "v4")
  b:close()
  -- the option through llm.cache.open, checked like the others
  T.err(function() llm.cache.open { path = path, write_delay = -1 } end, "write_delay must be >= 0")
  remove_db(path)
  path = tmpdb()
  local c = assert(llm.cache.open { path = path, write_delay = 10 })
  local d = assert(C.open { path = path, memory_bytes = 0 })
  local m = llm.model { name = "gpt-4o-mini", provider = "sim", cache = c }
  local r = assert(m:chat { user = "What is 2 + 2?", temperature = 0 })
  T.eq(r.cached, false)
  T.eq(d:info().entries, 0) -- waiting (for up to 10 s)
  T.ok(c:flush())
  T.eq(d:info().entries, 1)
  d:close()
  c:close()
  remove_db(path)
end)
