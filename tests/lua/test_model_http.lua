-- m:chat and m:embed over HTTP against the scripted server: the request on
-- the wire, response parsing, and the SDK retry rules of
-- ../shared/RELIABILITY.md §A 1-10, 14.
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local script = mock.script

local KEY = "sk-test-SECRET-0123456789"

local function ok_body(text, extra)
  local doc = {
    id = "chatcmpl-1", object = "chat.completion", model = "gpt-4o-mini-2024-07-18",
    choices = { { index = 0, message = { role = "assistant", content = text }, finish_reason = "stop" } },
    usage = { prompt_tokens = 12, completion_tokens = 3, total_tokens = 15,
              prompt_tokens_details = { cached_tokens = 4 },
              completion_tokens_details = { reasoning_tokens = 1 } },
  }
  for k, v in pairs(extra or {}) do doc[k] = v end
  return cjson.encode(doc)
end

local function model_for(srv, extra)
  local spec = { name = "gpt-4o-mini", provider = "openai", base_url = srv.url .. "/v1",
                 api_key = KEY, retry_scale = 0.01 }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return llm.model(spec)
end

local function reply(status, body, headers)
  local lines = { "status " .. status }
  for _, h in ipairs(headers or {}) do lines[#lines + 1] = "header " .. h end
  lines[#lines + 1] = "header Content-Type: application/json"
  lines[#lines + 1] = "body " .. body
  return table.concat(lines, "\n")
end

T.test("chat: the request on the wire and the parsed response", function()
  local srv = mock.start(script(reply(200, ok_body("Two, three, five."), { "x-request-id: req_abc" })))
  local m = model_for(srv, { defaults = { temperature = 0 } })
  local r, err = m:chat { system = "Be brief.", user = "Name three primes.", max_tokens = 20 }
  T.ok(r, tostring(err))
  T.eq(r.text, "Two, three, five.")
  T.eq(tostring(r), "Two, three, five.")
  T.eq(r.finish_reason, "stop")
  T.eq(r.usage, { prompt_tokens = 12, completion_tokens = 3, total_tokens = 15,
                  cached_tokens = 4, reasoning_tokens = 1 })
  T.eq(r.model, "gpt-4o-mini-2024-07-18")
  T.eq(r.provider, "openai")
  T.eq(r.request_id, "req_abc")
  T.eq(r.retries, 0)
  T.eq(r.cached, false)
  T.ok(r.latency_ms > 0 and r.ttft_ms == r.latency_ms)
  local req = srv:requests()[1]
  T.eq(req.method, "POST")
  T.eq(req.path, "/v1/chat/completions")
  T.eq(req.headers["authorization"], "Bearer " .. KEY)
  T.eq(req.headers["content-type"], "application/json")
  T.ok(req.headers["idempotency-key"])
  local body = cjson.decode(req.body)
  T.eq(body.model, "gpt-4o-mini")
  T.eq(body.temperature, 0)
  T.eq(body.max_tokens, 20)
  T.eq(body.messages, { { role = "system", content = "Be brief." },
                        { role = "user", content = "Name three primes." } })
  srv:stop()
end)

T.test("retries: 5xx then success, one idempotency key, default 2 retries", function()
  local srv = mock.start(script(reply(500, '{"error":{"message":"boom"}}'),
                                reply(503, "<html>down</html>"), reply(200, ok_body("fine"))))
  local r, err = model_for(srv):chat "hi"
  T.ok(r, tostring(err))
  T.eq(r.retries, 2)
  local reqs = srv:requests()
  T.eq(#reqs, 3)
  T.eq(reqs[1].headers["idempotency-key"], reqs[3].headers["idempotency-key"])
  srv:stop()

  srv = mock.start(script(reply(500, '{"error":{"message":"always"}}')))
  local r2, err2 = model_for(srv):chat "hi"
  T.eq(r2, nil)
  T.eq(err2.kind, "http")
  T.eq(err2.status, 500)
  T.eq(err2.message, "always")
  T.eq(err2.retries, 2)
  T.eq(#srv:requests(), 3)
  local _, err3 = model_for(srv, { max_retries = 0 }):chat "hi"
  T.eq(err3.retries, 0)
  T.eq(#srv:requests(), 4, "max_retries=0 makes exactly one attempt")
  srv:stop()
end)

T.test("retries: which statuses, and x-should-retry", function()
  local cases = {
    { 408, true }, { 409, true }, { 429, true }, { 500, true }, { 502, true }, { 503, true },
    { 504, true }, { 529, true }, { 400, false }, { 401, false }, { 403, false }, { 404, false },
    { 422, false },
  }
  for _, c in ipairs(cases) do
    local srv = mock.start(script(reply(c[1], '{"error":{"message":"x","type":"t","code":"c"}}'),
                                  reply(200, ok_body("ok"))))
    local r, err = model_for(srv):chat "hi"
    if c[2] then
      T.ok(r, c[1] .. " should be retried")
    else
      T.eq(r, nil, c[1] .. " must not be retried")
      T.eq({ err.status, err.type, err.code, err.retries }, { c[1], "t", "c", 0 })
    end
    srv:stop()
  end
  local srv = mock.start(script(reply(400, '{"error":{"message":"retry me"}}', { "x-should-retry: true" }),
                                reply(200, ok_body("ok"))))
  T.ok(model_for(srv):chat "hi", "x-should-retry: true on a 400 retries")
  srv:stop()
  srv = mock.start(script(reply(500, '{"error":{"message":"no"}}', { "x-should-retry: false" }),
                          reply(200, ok_body("ok"))))
  local r, err = model_for(srv):chat "hi"
  T.eq(r, nil, "x-should-retry: false on a 500 does not retry")
  T.eq(err.retries, 0)
  srv:stop()
end)

T.test("retry-after-ms wins over retry-after and is honoured", function()
  local srv = mock.start(script(
    reply(429, '{"error":{"message":"slow down"}}', { "retry-after: 30", "retry-after-ms: 1500" }),
    reply(200, ok_body("ok"))))
  local t0 = llm.now()
  local r = model_for(srv, { retry_scale = 0.1 }):chat "hi"
  local waited = llm.now() - t0
  T.ok(r)
  T.ok(waited >= 0.15 and waited < 1.5, "waited " .. waited .. " s for 1.5 s x 0.1")
  srv:stop()
end)

T.test("the retry policy in numbers", function()
  local retry = require "llm.retry"
  local half = function() return 0.5 end
  T.eq(retry.delay(0, { ["retry-after"] = "2" }), 2)
  T.eq(retry.delay(0, { ["retry-after-ms"] = "1500", ["retry-after"] = "9" }), 1.5)
  local now = 1700000000
  local date = os.date("!%a, %d %b %Y %H:%M:%S GMT", now + 5)
  T.eq(retry.delay(0, { ["retry-after"] = date }, half, now), 5)
  -- out of range: 0, negative, over the cap -> default backoff
  for _, v in ipairs({ "0", "-3", "61", "3600" }) do
    T.eq(retry.delay(0, { ["retry-after"] = v }, half), 0.5 * (1 - 0.25 * 0.5))
  end
  -- backoff: retry 1 in [0.375, 0.5], retry 2 in [0.75, 1], capped at 8
  T.eq(retry.delay(0, {}, function() return 0 end), 0.5)
  T.eq(retry.delay(0, {}, function() return 0.999999 end) >= 0.375, true)
  T.eq(retry.delay(1, {}, function() return 0 end), 1.0)
  T.eq(retry.delay(1, {}, function() return 1 end), 0.75)
  T.eq(retry.delay(10, {}, function() return 0 end), 8.0)
end)

T.test("quota exhausted: no retry, and the next calls fail fast", function()
  local srv = mock.start(script(reply(429,
    '{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}')))
  local m = model_for(srv)
  local r, err = m:chat "hi"
  T.eq(r, nil)
  T.eq(err.quota_exhausted, true)
  T.eq(err.retries, 0)
  T.eq(#srv:requests(), 1)
  local r2, err2 = m:chat "again"
  T.eq(r2, nil)
  T.eq(err2.quota_exhausted, true)
  T.eq(#srv:requests(), 1, "no request after the quota ran out")
  srv:stop()
end)

T.test("error bodies: HTML, empty, Anthropic and Ollama shapes", function()
  local srv = mock.start(script(
    reply(404, "<html><body>Not Found</body></html>"),
    "status 404\nbody",
    reply(400, '{"type":"error","error":{"type":"invalid_request_error","message":"bad field"},"request_id":"r1"}'),
    reply(400, '{"error":"model not found"}')))
  local m = model_for(srv)
  local _, e1 = m:chat "a"
  T.eq(e1.status, 404)
  T.ok(e1.message:find("Not Found", 1, true))
  local _, e2 = m:chat "b"
  T.eq(e2.message, "(empty body)")
  local _, e3 = m:chat "c"
  T.eq({ e3.message, e3.type }, { "bad field", "invalid_request_error" })
  local _, e4 = m:chat "d"
  T.eq(e4.message, "model not found")
  T.ok(tostring(e1):find("http HTTP 404", 1, true))
  srv:stop()
end)

T.test("transport failures are retried and named", function()
  local m = llm.model { name = "x", provider = "openai", base_url = "http://127.0.0.1:1/v1",
                        api_key = KEY, retry_scale = 0.001 }
  local r, err = m:chat "hi"
  T.eq(r, nil)
  T.eq(err.kind, "transport")
  T.eq(err.retries, 2)
  T.eq(err.curl_code, 7)
  T.ok(err.message:find("Couldn't connect", 1, true))

  local srv = mock.start(script("reset", reply(200, ok_body("after reset"))))
  local r2 = model_for(srv):chat "hi"
  T.eq(r2 and r2.text, "after reset")
  srv:stop()
end)

T.test("a 200 that is not JSON, or JSON of the wrong shape, is a parse error", function()
  local srv = mock.start(script(reply(200, "not json at all"),
                                reply(200, '{"choices":[{"message":5}]}')))
  local r, err = model_for(srv):chat "hi"
  T.eq(r, nil)
  T.eq(err.kind, "parse")
  local r2, err2 = model_for(srv):chat "again"
  T.eq(r2, nil)
  T.eq(err2.kind, "parse")
  srv:stop()
end)

T.test("timeouts: a slow server gives kind timeout", function()
  local srv = mock.start(script("sleep 2\nstatus 200\nbody late"))
  local r, err = model_for(srv, { timeout = 0.2, max_retries = 0 }):chat "hi"
  T.eq(r, nil)
  T.eq(err.kind, "timeout")
  srv:stop()
end)

T.test("embeddings: vectors in input order", function()
  local body = cjson.encode { object = "list", model = "text-embedding-3-small",
    data = { { index = 1, embedding = { 0, 1 } }, { index = 0, embedding = { 1, 0 } } },
    usage = { prompt_tokens = 5, total_tokens = 5 } }
  local srv = mock.start(script(reply(200, body)))
  local m = llm.model { name = "text-embedding-3-small", provider = "openai",
                        base_url = srv.url .. "/v1", api_key = KEY }
  local r, err = m:embed({ "first", "second" }, { dimensions = 2 })
  T.ok(r, tostring(err))
  T.eq(r.vectors, { { 1, 0 }, { 0, 1 } })
  T.eq(r.usage.prompt_tokens, 5)
  local sent = cjson.decode(srv:requests()[1].body)
  T.eq(sent.input, { "first", "second" })
  T.eq(sent.dimensions, 2)
  T.eq(srv:requests()[1].path, "/v1/embeddings")
  srv:stop()
end)

T.test("misuse raises clear errors", function()
  T.err(function() llm.model(42) end, "string or table expected")
  T.err(function() llm.model { name = "x", bogus = 1 } end, "unknown option 'bogus'")
  T.err(function() llm.model { name = "x", max_retries = -1 } end, "max_retries")
  T.err(function() llm.model { provider = "openai" } end, "model name is required")
  T.err(function() llm.model { name = "x", provider = "nope" } end, "unknown provider 'nope'")
  local m = llm.model { name = "x", provider = "openai", base_url = "http://127.0.0.1:1/v1" }
  T.err(function() m:chat(42) end, "string or table expected")
  T.err(function() m:chat {} end, "needs messages")
  T.err(function() m:chat { messages = { "hi" } } end, "messages[1] must be a table")
  T.err(function() m:embed {} end, "non-empty list")
  -- refused when the model is made, before any call
  T.err(function() llm.model { name = "x", provider = "openai", base_url = "http://127.0.0.1:1/v1",
                               headers = { ["X-Evil"] = "a\r\nInjected: 1" } } end, "line break")
  T.err(function() m:embed { 1 } end, "not a string")
  -- header lines must be strings: a number was converted on the stack,
  -- popped, and its freed text handed to curl
  local http = require "_llm.http"
  local many = {}
  for i = 1, 2000 do many[i] = i end
  T.err(function() http.request { url = "http://127.0.0.1:1/", headers = many } end,
    "headers must be a list")
  -- "vendor/model" with an unknown prefix is a model name (OpenRouter style)
  T.eq(llm.model({ name = "meta-llama/llama-3-8b", provider = "openai",
                   base_url = "http://x/v1", api_key = "k" }).name, "meta-llama/llama-3-8b")
end)

T.test("LLMRUN_DEBUG logs requests with secrets redacted", function()
  local srv = mock.start(script(reply(500, '{"error":{"message":"x"}}'), reply(200, ok_body("ok"))))
  local code = ([[
    local m = llm.model { name = "x", provider = "openai", base_url = "%s/v1",
      api_key = "%s", retry_scale = 0.001, headers = { ["x-api-key"] = "%s" } }
    local r = m:chat "hi"
    print(r.text)
  ]]):format(srv.url, KEY, KEY)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local status, out, err = T.llmrun(path, { env = { LLMRUN_DEBUG = "1" } })
  os.remove(path)
  srv:stop()
  T.eq(out, "ok\n")
  T.ok(err:find("Authorization: <redacted>", 1, true), "authorization redacted")
  T.ok(err:find("x-api-key: <redacted>", 1, true), "x-api-key redacted")
  T.ok(err:find("attempt 2", 1, true))
  T.eq(err:find(KEY, 1, true), nil, "the key never appears")
  T.eq(status, 0)
end)

-- Model:send is the send stage alone (what the gateway and the Batch API
-- use): the model's network table, with opts.net replacing fields of it
-- for one request; a non-2xx answer read by the provider.
T.test("m:send: opts.net overrides the method and header lines for one request", function()
  local srv = mock.start(script(reply(200, '{"ok":true}'),
    reply(404, '{"error":{"message":"no such batch","type":"invalid_request_error","code":"nope"}}')))
  local m = model_for(srv)
  local res, retries = m:send("request", srv.url .. "/v1/batches/b1", nil,
    { net = { method = "GET", headers = { "Accept: application/json", "X-Mine: 1" } } })
  T.eq(res.status, 200)
  T.eq(retries, 0)
  T.eq(res.body, '{"ok":true}')
  local r2, err = m:send("request", srv.url .. "/v1/batches/b2", "x", { net = { method = "DELETE" } })
  T.eq(r2, nil)
  T.eq(err.kind, "http")
  T.eq(err.status, 404)
  T.eq(err.code, "nope")
  T.eq(err.message, "no such batch")
  local reqs = srv:requests()
  T.eq(reqs[1].method, "GET")
  T.eq(reqs[1].headers["x-mine"], "1")
  T.eq(reqs[1].headers["authorization"], nil, "the override replaced the model's lines")
  T.ok(reqs[1].headers["idempotency-key"])
  T.eq(reqs[2].method, "DELETE")
  T.ok(reqs[2].headers["authorization"], "the model's lines otherwise")
  T.eq(m.net.method, "POST", "the model's own table is untouched")
  srv:stop()
end)
