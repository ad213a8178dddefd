-- The native Anthropic Messages API: request mapping, usage with prompt
-- caching, errors and retries (529), against the scripted server.
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local script = mock.script

local KEY = "sk-ant-test-SECRET"

local function reply(status, body)
  return "status " .. status .. "\nheader Content-Type: application/json\nheader request-id: req_01\nbody " .. body
end

local message = cjson.encode {
  id = "msg_1", type = "message", role = "assistant", model = "claude-3-5-haiku-20241022",
  content = { { type = "text", text = "Hello" }, { type = "text", text = " there" } },
  stop_reason = "max_tokens",
  usage = { input_tokens = 10, cache_creation_input_tokens = 100, cache_read_input_tokens = 1000,
            output_tokens = 7 },
}

local function model_for(srv)
  return llm.model { name = "claude-3-5-haiku-latest", provider = "anthropic",
                     base_url = srv.url, api_key = KEY, retry_scale = 0.01 }
end

T.test("request mapping and response parsing", function()
  local srv = mock.start(script(reply(200, message)))
  local r, err = model_for(srv):chat { messages = {
    { role = "system", content = "Be brief." },
    { role = "user", content = "Hi" } }, stop = "END", temperature = 0.2 }
  T.ok(r, tostring(err))
  T.eq(r.text, "Hello there")
  T.eq(r.finish_reason, "length")
  T.eq(r.request_id, "req_01")
  T.eq(r.usage.prompt_tokens, 1110)
  T.eq(r.usage.input_tokens, 10)
  T.eq(r.usage.cached_tokens, 1000)
  T.eq(r.usage.cache_creation_tokens, 100)
  T.eq(r.usage.completion_tokens, 7)
  local req = srv:requests()[1]
  T.eq(req.path, "/v1/messages")
  T.eq(req.headers["x-api-key"], KEY)
  T.eq(req.headers["anthropic-version"], "2023-06-01")
  T.eq(req.headers["authorization"], nil)
  local body = cjson.decode(req.body)
  T.eq(body.system, "Be brief.")
  T.eq(body.messages, { { role = "user", content = "Hi" } })
  T.eq(body.stop_sequences, { "END" })
  T.eq(body.max_tokens, 4096)
  T.eq(body.model, "claude-3-5-haiku-latest")
  srv:stop()
end)

T.test("529 overloaded is retried; errors map to one shape", function()
  local overloaded = cjson.encode { type = "error",
    error = { type = "overloaded_error", message = "Overloaded" }, request_id = "req_x" }
  local srv = mock.start(script(reply(529, overloaded), reply(200, message)))
  local r = model_for(srv):chat "hi"
  T.eq(r and r.retries, 1)
  srv:stop()
  srv = mock.start(script(reply(401, cjson.encode { type = "error",
    error = { type = "authentication_error", message = "invalid x-api-key" } })))
  local r2, err = model_for(srv):chat "hi"
  T.eq(r2, nil)
  T.eq({ err.kind, err.status, err.type, err.message, err.request_id },
       { "http", 401, "authentication_error", "invalid x-api-key", "req_01" })
  srv:stop()
end)

T.test("spend limit 429 fails fast", function()
  local srv = mock.start(script(reply(429, cjson.encode { type = "error",
    error = { type = "rate_limit_error", message = "enforced_spend_limit_reached: monthly limit" } })))
  local _, err = model_for(srv):chat "hi"
  T.eq(err.quota_exhausted, true)
  T.eq(#srv:requests(), 1)
  srv:stop()
end)

T.test("no embeddings endpoint: a clear error", function()
  local m = llm.model { name = "claude-x", provider = "anthropic", base_url = "http://127.0.0.1:1" }
  T.err(function() m:embed "x" end, "no embeddings endpoint")
end)
