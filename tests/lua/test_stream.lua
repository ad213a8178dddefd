-- m:stream over SSE against the scripted server: deltas, usage, TTFT,
-- [DONE], mid-stream errors, truncation, stalls, retries before the first
-- delta only, early break, Anthropic's event stream
-- (../shared/RELIABILITY.md §A 11, 12, 23, 24, 26-28).
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local script = mock.script

local function chunk(delta, extra)
  local c = { id = "c1", object = "chat.completion.chunk", model = "gpt-4o-mini-2024-07-18",
              choices = { { index = 0, delta = delta, finish_reason = cjson.null } }, usage = cjson.null }
  for k, v in pairs(extra or {}) do c[k] = v end
  return "data: " .. cjson.encode(c) .. "\\n\\n"
end

local usage_chunk = "data: " .. cjson.encode { id = "c1", object = "chat.completion.chunk",
  choices = {}, usage = { prompt_tokens = 9, completion_tokens = 4, total_tokens = 13 } } .. "\\n\\n"

local function sse_head()
  return "status 200\nheader Content-Type: text/event-stream\nheader x-request-id: req_s\nchunked"
end

local function model_for(srv, extra)
  local spec = { name = "gpt-4o-mini", provider = "openai", base_url = srv.url .. "/v1",
                 api_key = "sk-test", retry_scale = 0.01 }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return llm.model(spec)
end

local good_stream = table.concat({
  sse_head(),
  "chunk " .. chunk({ role = "assistant", content = "" }),
  "sleep 0.15",
  "chunk " .. chunk({ content = "Hel" }),
  "chunk " .. chunk({ content = "lo" }) .. chunk({ content = " world" }),
  "chunk " .. chunk({}, { choices = { { index = 0, delta = {}, finish_reason = "stop" } } }),
  "chunk " .. usage_chunk,
  "chunk data: [DONE]\\n\\n",
  "end",
}, "\n")

T.test("deltas, final response, usage and TTFT", function()
  local srv = mock.start(script(good_stream))
  local s = model_for(srv):stream "hi"
  local got = {}
  for d in s do got[#got + 1] = d.text end
  T.eq(got, { "Hel", "lo", " world" })
  local r = s:result()
  T.eq(r.text, "Hello world")
  T.eq(r.finish_reason, "stop")
  T.eq(r.usage.completion_tokens, 4)
  T.eq(r.request_id, "req_s")
  T.ok(r.ttft_ms >= 150, "ttft " .. r.ttft_ms .. " ms includes the 150 ms pause")
  T.ok(r.latency_ms >= r.ttft_ms)
  local body = cjson.decode(srv:requests()[1].body)
  T.eq(body.stream, true)
  T.eq(body.stream_options, { include_usage = true })
  srv:stop()
end)

T.test("on_delta consumes the stream and returns the response", function()
  local srv = mock.start(script(good_stream))
  local seen = {}
  local r, err = model_for(srv):stream("hi", { on_delta = function(d) seen[#seen + 1] = d.text end })
  T.ok(r, tostring(err))
  T.eq(table.concat(seen), "Hello world")
  T.eq(r.text, "Hello world")
  srv:stop()
end)

T.test("usage chunk with choices null or missing is accepted", function()
  local srv = mock.start(script(table.concat({
    sse_head(), "chunk " .. chunk({ content = "x" }),
    "chunk data: " .. cjson.encode { choices = cjson.null, usage = { prompt_tokens = 1, completion_tokens = 1 } } .. "\\n\\n",
    "chunk data: " .. cjson.encode { usage = { prompt_tokens = 2, completion_tokens = 3 } } .. "\\n\\n",
    "chunk data: [DONE]\\n\\n", "end" }, "\n")))
  local r = model_for(srv):stream("hi", { on_delta = function() end })
  T.eq(r.usage.completion_tokens, 3)
  srv:stop()
end)

T.test("an error chunk mid-stream raises, keeping the partial text", function()
  local srv = mock.start(script(table.concat({
    sse_head(), "chunk " .. chunk({ content = "partial " }),
    'chunk data: {"error":{"message":"The server had an error","type":"server_error"}}\\n\\n',
    "end" }, "\n")))
  local s = model_for(srv):stream "hi"
  local n = 0
  local err = T.err(function() for _ in s do n = n + 1 end end, "The server had an error")
  T.eq(n, 1)
  T.eq(err.kind, "provider")
  T.eq(err.partial_text, "partial ")
  local r, e2 = s:result()
  T.eq(r, nil)
  T.eq(e2, err)
  T.eq(s.response.partial, true)
  T.eq(s.response.text, "partial ")
  T.eq(#srv:requests(), 1, "never retried after a delta")
  srv:stop()
end)

T.test("a stream without [DONE] is truncated; a reset after a delta is not retried", function()
  local srv = mock.start(script(
    table.concat({ sse_head(), "chunk " .. chunk({ content = "cut" }), "end" }, "\n"),
    table.concat({ sse_head(), "chunk " .. chunk({ content = "reset" }), "sleep 0.05", "reset" }, "\n")))
  local m = model_for(srv)
  local r, err = m:stream("a", { on_delta = function() end })
  T.eq(r, nil)
  T.eq(err.truncated, true)
  T.eq(err.partial_text, "cut")
  local r2, err2 = m:stream("b", { on_delta = function() end })
  T.eq(r2, nil)
  T.eq(err2.kind, "transport")
  T.eq(err2.partial_text, "reset")
  T.eq(#srv:requests(), 2)
  srv:stop()
end)

T.test("failures before the first byte are retried like any request", function()
  -- the reset comes first: on a fresh connection curl cannot quietly
  -- retry it itself, as it does for a reused one that died
  local srv = mock.start(script(
    "reset",
    "status 429\nheader retry-after-ms: 10\nheader Content-Type: application/json\nbody {\"error\":{\"message\":\"slow\"}}",
    good_stream))
  local r, err = model_for(srv):stream("hi", { on_delta = function() end })
  T.ok(r, tostring(err))
  T.eq(r.retries, 2)
  T.eq(r.text, "Hello world")
  srv:stop()
end)

T.test("a non-2xx stream response gives the provider's error", function()
  local srv = mock.start(script(
    "status 401\nheader Content-Type: application/json\nbody {\"error\":{\"message\":\"Incorrect API key\",\"code\":\"invalid_api_key\"}}"))
  local s = model_for(srv):stream "hi"
  local err = T.err(function() for _ in s do end end, "Incorrect API key")
  T.eq(err.status, 401)
  T.eq(err.code, "invalid_api_key")
  srv:stop()
end)

T.test("a stalled stream is aborted; a slow healthy one is not", function()
  local srv = mock.start(script(
    table.concat({ sse_head(), "chunk " .. chunk({ content = "a" }), "stall" }, "\n"),
    table.concat({ sse_head(), "chunk " .. chunk({ content = "1" }), "sleep 0.3",
      "chunk " .. chunk({ content = "2" }), "sleep 0.3", "chunk " .. chunk({ content = "3" }),
      "chunk data: [DONE]\\n\\n", "end" }, "\n")))
  local m = model_for(srv, { stall_timeout = 0.5, timeout = 0.5 })
  local t0 = llm.now()
  local r, err = m:stream("a", { on_delta = function() end })
  T.eq(r, nil)
  T.eq(err.kind, "timeout")
  T.eq(err.stalled, true)
  T.ok(llm.now() - t0 < 3)
  -- 0.6 s in all, longer than `timeout`, but never 0.5 s without a byte
  local r2, err2 = m:stream("b", { on_delta = function() end })
  T.ok(r2, tostring(err2))
  T.eq(r2.text, "123")
  srv:stop()
end)

T.test("a stream that stalls right after its headers is aborted too", function()
  -- headers, then not one byte: the stall watch must already run (the
  -- header deadline is longer, so a loaded machine's slow headers cannot
  -- end it first)
  local srv = mock.start(script(table.concat({ sse_head(), "stall" }, "\n")))
  local m = model_for(srv, { stall_timeout = 0.3, timeout = 2, max_retries = 0 })
  local t0 = llm.now()
  local r, err = llm.with_timeout(5, function() return m:stream("a", { on_delta = function() end }) end)
  T.eq(r, nil)
  T.eq(err.kind, "timeout")
  T.eq(err.stalled, true)
  T.ok(llm.now() - t0 < 3)
  srv:stop()
end)

T.test("breaking out of the loop closes the transfer", function()
  local srv = mock.start(script(table.concat({ sse_head(), "chunk " .. chunk({ content = "first" }),
    "sleep 5", "chunk " .. chunk({ content = "late" }), "end" }, "\n")))
  local t0 = llm.now()
  for d in model_for(srv):stream "hi" do
    T.eq(d.text, "first")
    break
  end
  T.ok(llm.now() - t0 < 2, "did not wait for the rest")
  srv:stop()
end)

T.test("CRLF line ends and a BOM parse the same", function()
  local body = "\\xEF\\xBB\\xBF" .. chunk({ content = "crlf" }):gsub("\\n", "\\r\\n") .. "data: [DONE]\\r\\n\\r\\n"
  local srv = mock.start(script(table.concat({ sse_head(), "chunk " .. body, "end" }, "\n")))
  local r = model_for(srv):stream("hi", { on_delta = function() end })
  T.eq(r and r.text, "crlf")
  srv:stop()
end)

local function aevent(name, doc)
  return "event: " .. name .. "\\ndata: " .. cjson.encode(doc) .. "\\n\\n"
end

T.test("Anthropic stream: pings and unknown events ignored, usage cumulative", function()
  local srv = mock.start(script(table.concat({
    sse_head(),
    "chunk " .. aevent("message_start", { type = "message_start", message = { id = "m", model = "claude-x",
      usage = { input_tokens = 20, cache_read_input_tokens = 100, output_tokens = 1 } } }),
    "chunk " .. aevent("ping", { type = "ping" }),
    "chunk " .. aevent("content_block_start", { type = "content_block_start", index = 0,
      content_block = { type = "text", text = "" } }),
    "chunk " .. aevent("content_block_delta", { type = "content_block_delta", index = 0,
      delta = { type = "text_delta", text = "Hi" } }),
    "chunk " .. aevent("future_event", { type = "future_event", x = 1 }),
    "chunk " .. aevent("content_block_delta", { type = "content_block_delta", index = 0,
      delta = { type = "text_delta", text = " there" } }),
    "chunk " .. aevent("message_delta", { type = "message_delta", delta = { stop_reason = "end_turn" },
      usage = { output_tokens = 5 } }),
    "chunk " .. aevent("message_delta", { type = "message_delta", delta = {}, usage = { output_tokens = 7 } }),
    "chunk " .. aevent("message_stop", { type = "message_stop" }),
    "end" }, "\n")))
  local m = llm.model { name = "claude-x", provider = "anthropic", base_url = srv.url, api_key = "k" }
  local r, err = m:stream("hi", { on_delta = function() end })
  T.ok(r, tostring(err))
  T.eq(r.text, "Hi there")
  T.eq(r.finish_reason, "stop")
  T.eq(r.usage.completion_tokens, 7, "the last cumulative value, not 5 + 7")
  T.eq(r.usage.cached_tokens, 100)
  T.eq(r.usage.prompt_tokens, 120)
  srv:stop()
end)

T.test("Anthropic stream: an overloaded_error event raises with the message", function()
  local srv = mock.start(script(table.concat({
    sse_head(),
    "chunk " .. aevent("content_block_delta", { type = "content_block_delta", index = 0,
      delta = { type = "text_delta", text = "so far" } }),
    "chunk " .. aevent("error", { type = "error", error = { type = "overloaded_error", message = "Overloaded" } }),
    "end" }, "\n")))
  local m = llm.model { name = "claude-x", provider = "anthropic", base_url = srv.url, api_key = "k" }
  local r, err = m:stream("hi", { on_delta = function() end })
  T.eq(r, nil)
  T.eq({ err.kind, err.type, err.message, err.partial_text },
       { "provider", "overloaded_error", "Overloaded", "so far" })
  srv:stop()
end)

T.test("Anthropic: max_tokens over the SDK guard streams instead", function()
  local srv = mock.start(script(table.concat({
    sse_head(),
    "chunk " .. aevent("content_block_delta", { type = "content_block_delta", index = 0,
      delta = { type = "text_delta", text = "long" } }),
    "chunk " .. aevent("message_stop", { type = "message_stop" }),
    "end" }, "\n")))
  local m = llm.model { name = "claude-x", provider = "anthropic", base_url = srv.url, api_key = "k" }
  local r, err = m:chat { user = "write a book", max_tokens = 30000 }
  T.ok(r, tostring(err))
  T.eq(r.text, "long")
  T.eq(cjson.decode(srv:requests()[1].body).stream, true)
  srv:stop()
end)
