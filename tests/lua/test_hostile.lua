-- Hostile servers and odd input (issue 13): what a server may send that
-- it should not, and what llmrun must do about it. Each case runs against
-- the scripted server (tests/c/mock_http.h), most of them in one of its
-- named hostile modes (tests/tools/mockhttp.c, `mockhttp --mode NAME`).
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local script = mock.script

local KEY = "sk-test-HOSTILE-0123456789abcdef"

local function ok_body(text)
  return cjson.encode {
    id = "c1", object = "chat.completion", model = "gpt-4o-mini",
    choices = { { index = 0, message = { role = "assistant", content = text }, finish_reason = "stop" } },
    usage = { prompt_tokens = 12, completion_tokens = 3, total_tokens = 15 },
  }
end

local function reply(status, body, headers)
  local lines = { "status " .. status }
  for _, h in ipairs(headers or {}) do lines[#lines + 1] = "header " .. h end
  lines[#lines + 1] = "header Content-Type: application/json"
  lines[#lines + 1] = "body " .. body
  return table.concat(lines, "\n")
end

local function model_for(srv, extra)
  local spec = { name = "gpt-4o-mini", provider = "openai", base_url = srv.url .. "/v1",
                 api_key = KEY, retry_scale = 0.01 }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return llm.model(spec)
end

-- ---- item 2: no POST reaches the server more often than counted ----------------

-- libcurl re-sends a request on its own when a kept-alive connection dies
-- after the request went out; llmrun must not let it (src/http.c).
T.test("a dropped reused connection: 1 + max_retries sends, all counted, one key", function()
  local db = T.tmpdb()
  llm.log.use(db)
  for _, mode in ipairs { "chat", "stream" } do
    for _, n in ipairs { 0, 2 } do
      local srv <close> = mock.start(script(reply(200, ok_body("warm")), "close"))
      local m = model_for(srv, { max_retries = n })
      T.ok(m:chat "warm-up")   -- leaves a kept-alive connection
      local tag = mode .. n
      local r, err
      if mode == "chat" then
        r, err = m:chat("dropped", { tag = tag })
      else
        r, err = m:stream("dropped", { tag = tag, on_delta = function() end })
      end
      T.eq(r, nil)
      T.eq(err.kind, "transport", tag)
      T.eq(err.retries, n, tag)
      local reqs = srv:requests()
      T.eq(#reqs, 2 + n, tag .. ": requests the server saw")
      for i = 3, #reqs do
        T.eq(reqs[i].headers["idempotency-key"], reqs[2].headers["idempotency-key"])
      end
      T.ok(reqs[2].headers["idempotency-key"] ~= reqs[1].headers["idempotency-key"])
    end
  end
  T.ok(llm.log.flush())
  local reader = assert(llm.log.reader(db))
  local seen = {}
  for _, row in ipairs(reader:calls(reader:find_run(), 0)) do
    if row.tag then seen[row.tag] = row.retries end
  end
  reader:close()
  T.eq(seen, { chat0 = 0, chat2 = 2, stream0 = 0, stream2 = 2 })
  T.remove_db(db)
end)

-- ---- item 5: a key the server echoes never comes back out ----------------------

T.test("a key echoed in an error is masked in the error and its text", function()
  local srv <close> = mock.hostile "echo-auth"
  local r, err = model_for(srv, { max_retries = 0 }):chat "hi"
  T.eq(r, nil)
  T.eq(err.status, 401)
  T.eq(srv:requests()[1].headers.authorization, "Bearer " .. KEY) -- it was sent, and echoed
  T.ok(not err.message:find(KEY, 1, true), err.message)
  T.ok(err.message:find("Incorrect API key provided: Bearer <redacted>", 1, true), err.message)
  T.ok(not tostring(err):find(KEY, 1, true))
end)

T.test("sk- and sk-ant- shaped secrets are masked even when not configured", function()
  local untrusted = require "llm.untrusted"
  local e = llm.error("http", "keys sk-proj-AAAAAAAAAAAAAAAAAAAA1234 and sk-ant-api03-BBBBBBBBBBBBBBBBBBBB, "
    .. "not task-CCCCCCCCCCCCCCCCCCCCCC nor sk-short", { detail = "sk-DDDDDDDDDDDDDDDDDDDDDDDD" })
  T.eq(e.message, "keys <redacted> and <redacted>, not task-CCCCCCCCCCCCCCCCCCCCCC nor sk-short")
  T.eq(e.detail, "<redacted>")
  untrusted.add_secret("my-own-secret-value")
  T.eq(untrusted.mask("x my-own-secret-value y my-own-secret-value"), "x <redacted> y <redacted>")
  untrusted.add_secret("short") -- too short to mask without blanking ordinary words
  T.eq(untrusted.mask("a short text"), "a short text")
end)

-- In a fresh process: the key in the environment, debug logging on, an
-- uncaught error, the call log: the key must appear in none of them.
T.test("LLMRUN_DEBUG=1, stderr and the call log never show an echoed key", function()
  local srv <close> = mock.hostile "echo-auth"
  local db = T.tmpdb()
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(([[
    llm.log.use(%q)
    local m = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = %q,
                          max_retries = 1, retry_scale = 0.01 }
    local r, err = m:chat "hi"
    print(err)
    llm.log.flush()
    assert(m:chat "again")
  ]]):format(db, srv.url .. "/v1"))
  f:close()
  local status, out, err = T.llmrun("'" .. path .. "'",
    { env = { OPENAI_API_KEY = KEY, LLMRUN_DEBUG = "1" } })
  os.remove(path)
  T.ok(status ~= 0)
  T.ok(#srv:requests() >= 2)
  T.ok(out:find("<redacted>", 1, true), out)
  T.ok(err:find("<redacted>", 1, true), err)
  T.ok(not out:find(KEY, 1, true), out)
  T.ok(not err:find(KEY, 1, true), err)
  for _, suffix in ipairs { "", "-wal" } do
    local df = io.open(db .. suffix, "rb")
    if df then
      T.ok(not df:read("a"):find(KEY, 1, true), "key in " .. db .. suffix)
      df:close()
    end
  end
  T.remove_db(db)
end)

-- ---- item 6: remote text cannot drive the terminal ------------------------------

T.test("control characters in an error and its request id are escaped when printed", function()
  local srv <close> = mock.hostile "ansi-error"
  local r, err = model_for(srv, { max_retries = 0 }):chat "hi"
  T.eq(r, nil)
  T.eq(err.status, 400)
  T.ok(not err.request_id:find("[%c]"), err.request_id)   -- header values: escaped on arrival
  T.eq(err.request_id, "req_\\x1b]0;pwned\\x07\\x1b[2J")
  T.ok(err.message:find("\27", 1, true))                   -- the message keeps the server's text
  local s = tostring(err)
  T.ok(not s:find("[%c]"), s)                              -- printing it cannot
  T.ok(s:find("bad \\x1b[31mred\\x1b[0m \\x1b]0;title\\x07\\r\\nllmrun: forged line", 1, true), s)
  T.eq(require("llm.untrusted").escape("ok\tjust text é"), "ok\tjust text é")
  T.eq(require("llm.untrusted").escape("\194\155[2J\255"), "\\u009b[2J\\xff")
end)

-- ---- item 9: only http and https ------------------------------------------------

T.test("base URLs other than http(s) are refused when the model is made", function()
  for _, url in ipairs { "file:///etc/hostname#", "dict://127.0.0.1:11211/", "ftp://h/x",
                         "gopher://h/", "http://", "127.0.0.1:8080/v1", "http://h/ x" } do
    local e = T.err(function()
      llm.model { name = "gpt-4o-mini", provider = "openai", base_url = url, api_key = KEY }
    end, "llm.model: the base URL")
    T.ok(tostring(e):find("(from base_url)", 1, true), tostring(e))
  end
  -- from the environment: the variable is named, the file is never read
  local status, out, err = T.llmrun("prompt -m openai/gpt-4o hi",
    { env = { OPENAI_BASE_URL = "file:///etc/hostname#", OPENAI_API_KEY = KEY } })
  T.ok(status ~= 0)
  T.ok(err:find("OPENAI_BASE_URL", 1, true) and err:find("http:// or https://", 1, true), err)
  local host = io.open("/etc/hostname")
  if host then
    local name = host:read("l")
    host:close()
    if name and #name > 3 then T.ok(not (out .. err):find(name, 1, true), "the file was read") end
  end
end)

T.test("llm.http refuses other schemes and malformed URLs at once, unretried", function()
  for _, url in ipairs { "file:///etc/passwd", "dict://127.0.0.1:1/", "http://[::1", "http://a b/" } do
    T.err(function() llm.http.request { url = url } end, "http request:")
  end
  -- a model whose URL is malformed past the scheme: misuse, raised, not retried
  local m = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = "http://[::1/v1",
                        api_key = KEY, max_retries = 2 }
  local t0 = llm.now()
  T.err(function() m:chat "hi" end, "malformed URL")
  T.ok(llm.now() - t0 < 0.4, "no retry delays")
end)

T.test("a redirect to file:// is an HTTP error, never followed", function()
  local srv <close> = mock.hostile "redirect-file"
  local r, err = model_for(srv, { max_retries = 0 }):chat "hi"
  T.eq(r, nil)
  T.eq(err.kind, "http")
  T.eq(err.status, 302)
  T.eq(#srv:requests(), 1)
end)

-- ---- item 10: JSON as a browser reads it ------------------------------------------

T.test("lone surrogate escapes become U+FFFD, in a chat and mid-stream", function()
  local srv <close> = mock.hostile "lone-surrogate"
  local m = model_for(srv, { max_retries = 0 })
  local r, err = m:chat "hi"
  T.ok(r, tostring(err))
  T.eq(r.text, "a\u{FFFD}b\u{FFFD}c")
  local parts = {}
  local s = m:stream "hi"
  for d in s do parts[#parts + 1] = d.text end
  T.eq(parts, { "a\u{FFFD}b", "c" })
  T.eq(s:result().text, "a\u{FFFD}bc")
end)

T.test("NaN and Infinity are not JSON: the answer is a parse error", function()
  local srv <close> = mock.hostile "nan-literal"
  local r, err = model_for(srv, { max_retries = 0 }):chat "hi"
  T.eq(r, nil)
  T.eq(err.kind, "parse")
end)

T.test("the response JSON reader: what it accepts and what it gives", function()
  local json = require "_llm.json"
  T.eq(json.decode('"\\ud800x\\udc00"'), "\u{FFFD}x\u{FFFD}")
  T.eq(json.decode('"\\ud83d\\ude00"'), "\u{1F600}")
  T.eq(json.decode('"a\255b"'), "a\u{FFFD}b")     -- invalid UTF-8, as a browser decodes it
  T.eq(math.type(json.decode("42")), "integer")
  T.eq(math.type(json.decode("42.5")), "float")
  T.eq(json.decode("null"), cjson.null)
  T.eq(json.decode('{"a":1,"a":2}').a, 2)
  for _, bad in ipairs { "NaN", "[Infinity]", "[-Infinity]", "[0x10]", "[1,]", "{'a':1}",
                         '"a\nb"', "[01]", "" } do
    T.err(function() json.decode(bad) end, "invalid JSON")
  end
end)

-- ---- item 11: every stream error says how many retries it took -------------------

T.test("a stream that fails after its first delta carries err.retries", function()
  local first = "status 200 OK\nheader Content-Type: text/event-stream\nchunked\n"
    .. 'chunk data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\\n\\n\nclose'
  local srv <close> = mock.start(script(reply(503, '{"error":{"message":"busy"}}'), first))
  local s = model_for(srv, { max_retries = 2 }):stream "hi"
  local got, err = {}, nil
  local ok, e = pcall(function() for d in s do got[#got + 1] = d.text end end)
  T.eq(ok, false)
  err = e
  T.eq(got, { "Hel" })
  T.eq(err.retries, 1)
  T.eq(err.partial_text, "Hel")
  local _, err2 = s:result()
  T.eq(err2.retries, 1)
end)

-- ---- item 12: small ones --------------------------------------------------------

T.test("an error message that is an object prints as JSON, not table: 0x", function()
  local srv <close> = mock.hostile "message-object"
  local r, err = model_for(srv, { max_retries = 0 }):chat "hi"
  T.eq(r, nil)
  T.eq(type(err.message), "string")
  T.ok(not tostring(err):find("table: 0x", 1, true), tostring(err))
  T.ok(tostring(err):find('"detail":"field required"', 1, true), tostring(err))
end)

T.test("content 42 in an answer is the text \"42\", not 42.0", function()
  local srv <close> = mock.hostile "number-content"
  local r, err = model_for(srv, { max_retries = 0 }):chat "hi"
  T.ok(r, tostring(err))
  T.eq(r.text, "42")
  T.eq(tostring(r), "42")
end)

T.test("an HTML or JSON reply to a stream request says what came back", function()
  for mode, want in pairs { ["html-to-stream"] = "text/html", ["json-to-stream"] = "application/json" } do
    local srv <close> = mock.hostile(mode)
    local m = model_for(srv, { max_retries = 0 })
    local r, err = m:stream("hi", { on_delta = function() end })
    T.eq(r, nil, mode)
    local s = tostring(err)
    T.ok(not s:find("middle of an event", 1, true), s)
    T.ok(s:find("200", 1, true) and s:find(want, 1, true), s)
    T.ok(s:find(mode == "html-to-stream" and "<!DOCTYPE html>" or "not a stream", 1, true), s)
  end
end)

T.test("a stream labelled JSON that is SSE is still read as a stream", function()
  local srv <close> = mock.start(script("status 200 OK\nheader Content-Type: application/json\nchunked\n"
    .. 'chunk data: {"choices":[{"index":0,"delta":{"content":"fine"}}]}\\n\\n\n'
    .. "chunk data: [DONE]\\n\\n\nend"))
  local r, err = model_for(srv, { max_retries = 0 }):stream("hi", { on_delta = function() end })
  T.ok(r, tostring(err))
  T.eq(r.text, "fine")
end)

T.test("a stream of keep-alive comments only stalls out", function()
  local srv <close> = mock.hostile "keepalive-only"
  local m = model_for(srv, { max_retries = 0, stall_timeout = 0.5 })
  local t0 = llm.now()
  local r, err = m:stream("hi", { on_delta = function() end })
  local took = llm.now() - t0
  T.eq(r, nil)
  T.eq(err.kind, "timeout")
  T.eq(err.stalled, true)
  T.ok(took < 5, "stalled out after " .. took .. " s")
end)

T.test("a dropped stream after its headers is a transport error with a count", function()
  local srv <close> = mock.hostile "drop-after-headers"
  local r, err = model_for(srv, { max_retries = 1 }):stream("hi", { on_delta = function() end })
  T.eq(r, nil)
  T.eq(err.kind, "transport")
  T.eq(err.retries, 0) -- the stream had started: not retried
  T.eq(#srv:requests(), 1)
end)

T.test("an openai/ model with no key refuses, unless local or api_key = false", function()
  T.err(function()
    llm.model { name = "gpt-4o-mini", provider = "openai", base_url = "https://api.example.com/v1" }
  end, "no API key")
  -- loopback needs no key (Ollama, vLLM, llama.cpp)
  for _, url in ipairs { "http://127.0.0.1:9/v1", "http://localhost:9/v1", "http://[::1]:9/v1" } do
    T.ok(llm.model { name = "m", provider = "openai", base_url = url })
  end
  -- an explicit opt-out sends no Authorization header
  local srv <close> = mock.start(script(reply(200, ok_body("ok"))))
  local m = llm.model { name = "m", provider = "openai", base_url = srv.url .. "/v1", api_key = false }
  T.ok(m:chat "hi")
  T.eq(srv:requests()[1].headers.authorization, nil)
end)

T.test("only HTTP statuses are labelled HTTP when an error prints", function()
  T.eq(tostring(llm.error("cache", "disk I/O error", { status = "io" })), "cache io: disk I/O error")
  T.eq(tostring(llm.error("http", "Not Found", { status = 404 })), "http HTTP 404: Not Found")
end)

-- ---- item 7: a connection cap per host ------------------------------------------

-- Starts tests/tools/connserver (a server that holds at most max_conns
-- connections and resets the rest).
local function connserver(max_conns, delay_ms)
  local bin = assert(os.getenv("CONNSERVER"), "CONNSERVER is not set (run through ctest)")
  local p = assert(io.popen(("%s %d %d 60"):format(bin, max_conns, delay_ms), "r"))
  local port, pid = p:read("n", "n")
  assert(port and pid, "connserver did not start")
  local srv = { url = ("http://127.0.0.1:%d"):format(port) }
  function srv.stats()
    return assert(llm.http.request { url = srv.url .. "/stats" }).body
  end
  local function stop()
    if srv.stopped then return end
    srv.stopped = true
    os.execute("kill " .. pid .. " 2>/dev/null")
    p:close()
  end
  return setmetatable(srv, { __close = stop, __gc = stop })
end

T.test("10,000 calls at once against a server that holds 2,048 connections all succeed", function()
  local srv <close> = connserver(2048, 20)
  local m = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = srv.url .. "/v1",
                        api_key = KEY, max_retries = 0, timeout = 120 }
  local items = {}
  for i = 1, 10000 do items[i] = i end
  local failed, first = 0, nil
  local t0 = llm.now()
  llm.map(items, function(i)
    local r, err = m:chat { user = "n" .. i, max_tokens = 1 }
    if not r then
      failed = failed + 1
      first = first or tostring(err)
    end
  end, { concurrency = 10000, progress = false })
  local stats = cjson.decode(srv.stats())
  T.eq(failed, 0, "failed calls (first: " .. tostring(first) .. ")")
  T.eq(stats.requests, 10000)
  T.eq(stats.refused, 0)
  T.ok(stats.max_open <= llm.http.max_host_connections(), cjson.encode(stats))
  T.ok(llm.now() - t0 < 60, "took " .. (llm.now() - t0) .. " s")
end)

T.test("the connection cap is configurable and applies at once", function()
  local srv <close> = connserver(2048, 20)
  local before = llm.http.max_host_connections(8)
  T.eq(before, 1000) -- the documented default
  local m = llm.model { name = "m", provider = "openai", base_url = srv.url .. "/v1", api_key = KEY,
                        max_retries = 0 }
  local items = {}
  for i = 1, 200 do items[i] = i end
  local ok = 0
  llm.map(items, function(i) if m:chat("n" .. i) then ok = ok + 1 end end,
          { concurrency = 200, progress = false })
  llm.http.max_host_connections(before)
  T.eq(ok, 200)
  local stats = cjson.decode(srv.stats())
  T.ok(stats.max_open <= 9, cjson.encode(stats)) -- 8, plus the stats request's own
  T.err(function() llm.http.max_host_connections(-1) end, "connection count")
end)

-- Item 4 of issue 13 (what to make of such usage) is the call log's; here
-- only that the answer itself still arrives.
T.test("usage values no server should send do not fail the call", function()
  local srv <close> = mock.hostile "odd-usage"
  local r, err = model_for(srv, { max_retries = 0 }):chat "hi"
  T.ok(r, tostring(err))
  T.eq(r.text, "ok")
end)

T.test("a call cancelled during a retry counts the attempts it made", function()
  local db = T.tmpdb()
  llm.log.use(db)
  local srv <close> = mock.start(script(reply(500, '{"error":{"message":"boom"}}'),
                                        "sleep 3\n" .. reply(200, ok_body("late"))))
  local m = model_for(srv, { max_retries = 2 })
  local t = llm.spawn(function() return m:chat("hi", { tag = "cut" }) end)
  local deadline = llm.now() + 5
  while #srv:requests() < 2 and llm.now() < deadline do llm.sleep(0.01) end
  T.eq(#srv:requests(), 2)
  t:cancel()
  t:wait()
  T.ok(llm.log.flush())
  local reader = assert(llm.log.reader(db))
  local row
  for _, r in ipairs(reader:calls(reader:find_run(), 0)) do if r.tag == "cut" then row = r end end
  reader:close()
  T.eq(row.status, "cancelled")
  T.eq(row.retries, 1)
  T.remove_db(db)
end)
