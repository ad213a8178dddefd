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

-- ---- the request side of the mapping (llm.model_rules.anthropic) -------------------------

local function sent_body(srv, i)
  local req = srv:requests()[i or 1]
  return cjson.decode(req.body), req.body
end

T.test("tools, tool_choice, assistant tool calls, tool results and images map to Anthropic's shapes", function()
  local srv = mock.start(script(reply(200, message)))
  local args = '{"ids":[],"n":12345678901234567890,"path":"a\\/b"}' -- kept byte for byte
  local r, err = model_for(srv):chat {
    messages = {
      { role = "system", content = "Be brief." },
      { role = "user", content = {
        { type = "text", text = "What is in these?" },
        { type = "image_url", image_url = { url = "data:image/png;base64,iVBORw0KGgo=" } },
        { type = "image_url", image_url = { url = "https://example.com/cat.jpg" } } } },
      { role = "assistant", content = "Checking.", tool_calls = {
        { id = "call_1", type = "function", ["function"] = { name = "lookup", arguments = args } },
        { id = "call_2", type = "function", ["function"] = { name = "now", arguments = "" } } } },
      { role = "tool", tool_call_id = "call_1", content = "a cat" },
      { role = "tool", tool_call_id = "call_2", content = "noon" },
      { role = "user", content = "And now?" },
    },
    tools = { { type = "function", ["function"] = { name = "lookup", description = "Look up",
      parameters = { type = "object", properties = { ids = { type = "array" } } } } },
      { type = "function", ["function"] = { name = "now" } } },
    tool_choice = "required", parallel_tool_calls = false, stop = { "END" },
  }
  T.ok(r, tostring(err))
  local b, raw = sent_body(srv)
  T.eq(b.system, "Be brief.")
  T.eq(b.tools, {
    { name = "lookup", description = "Look up",
      input_schema = { type = "object", properties = { ids = { type = "array" } } } },
    { name = "now", input_schema = { type = "object", properties = {} } } })
  T.eq(b.tool_choice, { type = "any", disable_parallel_tool_use = true })
  T.eq(b.stop_sequences, { "END" })
  T.eq(#b.messages, 3, "user, assistant, and one user turn for both results and the next question")
  T.eq(b.messages[1].content[2], { type = "image", source = { type = "base64", media_type = "image/png",
    data = "iVBORw0KGgo=" } })
  T.eq(b.messages[1].content[3], { type = "image", source = { type = "url", url = "https://example.com/cat.jpg" } })
  local a = b.messages[2]
  T.eq(a.role, "assistant")
  T.eq(a.content[1], { type = "text", text = "Checking." })
  T.eq({ a.content[2].type, a.content[2].id, a.content[2].name }, { "tool_use", "call_1", "lookup" })
  T.eq(a.content[3].input, {}, "no arguments: an empty object")
  T.ok(raw:find('"input":' .. args, 1, true), "the arguments' JSON text is in the body as it was given")
  local u = b.messages[3]
  T.eq(u.role, "user")
  T.eq(u.content, {
    { type = "tool_result", tool_use_id = "call_1", content = "a cat" },
    { type = "tool_result", tool_use_id = "call_2", content = "noon" },
    { type = "text", text = "And now?" } })
  srv:stop()
end)

T.test("OpenAI's user (here from the model's defaults) becomes metadata.user_id", function()
  local srv = mock.start(script(reply(200, message)))
  local m = llm.model { name = "claude-x", provider = "anthropic", base_url = srv.url, api_key = KEY,
                        defaults = { user = "u-1" } }
  T.ok(m:chat "hi")
  T.eq(sent_body(srv).metadata, { user_id = "u-1" })
  srv:stop()
end)

T.test("tool_choice auto, none and a named function", function()
  local srv = mock.start(script(reply(200, message)))
  local m = model_for(srv)
  local tools = { { type = "function", ["function"] = { name = "f", parameters = { type = "object" } } } }
  for i, c in ipairs { "auto", "none", { type = "function", ["function"] = { name = "f" } } } do
    T.ok(m:chat { messages = { { role = "user", content = "x" } }, tools = tools, tool_choice = c })
    local want = ({ { type = "auto" }, { type = "none" }, { type = "tool", name = "f" } })[i]
    T.eq(sent_body(srv, i).tool_choice, want)
  end
  srv:stop()
end)

T.test("reasoning_effort becomes a thinking budget; max_tokens must exceed it", function()
  local srv = mock.start(script(reply(200, message)))
  local m = model_for(srv)
  T.ok(m:chat { messages = { { role = "user", content = "x" } }, reasoning_effort = "medium" })
  T.eq(sent_body(srv).thinking, { type = "enabled", budget_tokens = 2048 })
  T.eq(sent_body(srv).max_tokens, 4096)
  T.ok(m:chat { messages = { { role = "user", content = "x" } }, reasoning_effort = "none" })
  T.eq(sent_body(srv, 2).thinking, nil)
  T.err(function() m:chat { messages = { { role = "user", content = "x" } }, reasoning_effort = "high",
    max_tokens = 1000 } end, "max_tokens (1000) must be larger than the thinking budget (4096)")
  T.err(function() m:chat { messages = { { role = "user", content = "x" } }, reasoning_effort = "huge" } end,
    "reasoning_effort 'huge'")
  T.eq(#srv:requests(), 2, "misuse sends nothing")
  srv:stop()
end)

T.test("unknown and unmappable parameters raise, naming the parameter and the provider", function()
  local srv = mock.start(script(reply(200, message)))
  local m = model_for(srv)
  local e = T.err(function() m:chat { messages = { { role = "user", content = "x" } }, temprature = 0.5 } end,
    "unknown request field 'temprature'")
  T.ok(tostring(e):find("provider anthropic", 1, true), tostring(e))
  -- it names the nearest field the API has
  T.ok(tostring(e):find("did you mean 'temperature'?", 1, true), tostring(e))
  -- extra = {...} sends a field without any check
  local r = assert(m:chat { messages = { { role = "user", content = "x" } }, extra = { temprature = 0.5 } })
  T.ok(r.text)
  T.eq(require("cjson").decode(srv:requests()[1].body).temprature, 0.5)
  T.err(function() m:chat { messages = { { role = "user", content = "x" } }, logprobs = true } end,
    "parameter 'logprobs' is not supported for model \"claude-3-5-haiku-latest\" (provider anthropic")
  T.err(function() m:chat { messages = { { role = "user", content = "x" } }, n = 2 } end,
    "parameter 'n' = 2 is not supported (only 1)")
  T.err(function() m:chat { messages = { { role = "user", content = "x" } }, presence_penalty = 0.5 } end,
    "'presence_penalty' is not supported")
  T.err(function() m:chat { messages = { { role = "user", content = { { type = "input_audio" } } } } } end,
    "content part type 'input_audio' has no Anthropic counterpart")
  T.eq(#srv:requests(), 1, "misuse sends nothing (the one request is the extra = {...} call's)")
  -- drop_params = true: dropped (with one warning), the call goes out
  local lenient = llm.model { name = "claude-3-5-haiku-latest", provider = "anthropic", base_url = srv.url,
                              api_key = KEY, drop_params = true }
  T.ok(lenient:chat { messages = { { role = "user", content = "x" } }, presence_penalty = 0.5, n = 1 })
  local b = sent_body(srv)
  T.eq(b.presence_penalty, nil)
  T.eq(b.n, nil)
  srv:stop()
end)

T.test("response_format json_schema goes out as a forced tool and comes back as the text", function()
  local answer = '{"city":"Paris","tags":[],"n":12345678901234567890}'
  local body = '{"id":"msg_j","type":"message","role":"assistant","model":"claude-x","content":'
    .. '[{"type":"tool_use","id":"toolu_1","name":"city","input":' .. answer .. '}],'
    .. '"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":9}}'
  local srv = mock.start(script(reply(200, body)))
  local schema = { type = "object", properties = { city = { type = "string" } } }
  local r, err = model_for(srv):chat { messages = { { role = "user", content = "Where?" } },
    response_format = { type = "json_schema", json_schema = { name = "city", schema = schema } } }
  T.ok(r, tostring(err))
  local b = sent_body(srv)
  T.eq(b.tool_choice, { type = "tool", name = "city" })
  T.eq(b.tools[1].name, "city")
  T.eq(b.tools[1].input_schema, schema)
  T.eq(r.text, answer, "the tool input, byte for byte")
  T.eq(r.tool_calls, nil)
  T.eq(r.finish_reason, "stop")
  T.err(function() model_for(srv):chat { messages = { { role = "user", content = "x" } },
    response_format = { type = "json_schema", json_schema = { name = "c", schema = schema } },
    tools = { { type = "function", ["function"] = { name = "f" } } } } end, "cannot be combined with tools")
  srv:stop()
end)

T.test("a streamed response_format answer streams as text deltas", function()
  local function ev(t, d) return "event: " .. t .. "\\ndata: " .. cjson.encode(d):gsub("\\", "\\\\") .. "\\n\\n" end
  local sse = ev("message_start", { type = "message_start", message = { id = "m", model = "claude-x",
      usage = { input_tokens = 3, output_tokens = 1 } } })
    .. ev("content_block_start", { type = "content_block_start", index = 0,
      content_block = { type = "tool_use", id = "t", name = "city", input = {} } })
    .. ev("content_block_delta", { type = "content_block_delta", index = 0,
      delta = { type = "input_json_delta", partial_json = '{"city":' } })
    .. ev("content_block_delta", { type = "content_block_delta", index = 0,
      delta = { type = "input_json_delta", partial_json = '"Paris"}' } })
    .. ev("message_delta", { type = "message_delta", delta = { stop_reason = "tool_use" },
      usage = { output_tokens = 7 } })
    .. ev("message_stop", { type = "message_stop" })
  local srv = mock.start("status 200\nheader Content-Type: text/event-stream\nbody " .. sse .. "\n")
  local parts = {}
  local r, err = model_for(srv):stream({ messages = { { role = "user", content = "Where?" } },
    response_format = { type = "json_schema", json_schema = { name = "city", schema = { type = "object" } } } },
    { on_delta = function(d) parts[#parts + 1] = d.text end })
  T.ok(r, tostring(err))
  T.eq(parts, { '{"city":', '"Paris"}' })
  T.eq(r.text, '{"city":"Paris"}')
  T.eq(r.tool_calls, nil)
  T.eq(r.finish_reason, "stop")
  T.eq(r.usage.completion_tokens, 7)
  srv:stop()
end)

T.test("message names are not sent (the Messages API has none): dropped with a warning", function()
  local script_text = ([[
local srv_url = ...
local m = llm.model { name = "claude-x", provider = "anthropic", base_url = srv_url, api_key = "k" }
for _ = 1, 3 do assert(m:chat { messages = { { role = "user", name = "ann", content = "hi" } } }) end
]])
  local srv = mock.start(script(reply(200, message)))
  local f = os.tmpname()
  local h = assert(io.open(f, "w")); h:write(script_text); h:close()
  local status, _, err = T.llmrun(f .. " " .. srv.url)
  os.remove(f)
  T.eq(status, 0, err)
  local _, n = err:gsub("parameter 'messages%[1%]%.name' is not supported", "")
  T.eq(n, 1, "one warning for three calls: " .. err)
  T.eq(cjson.decode(srv:requests()[3].body).messages, { { role = "user", content = "hi" } })
  srv:stop()
end)

-- ---- response defects, on constructed bodies where no recording was found ------------

T.test("non-streamed tool_use input reaches the user byte for byte ([] and long numbers)", function()
  -- constructed: no real recording with these values was found (see tests/fixtures/providers)
  local input = '{"list":[],"big":12345678901234567890,"url":"http:\\/\\/x\\/y","u":"\\u00e9"}'
  local body = '{"id":"m","type":"message","role":"assistant","model":"claude-x","content":['
    .. '{"type":"text","text":"ok"},{"type":"tool_use","id":"t1","name":"f","input":' .. input .. '}],'
    .. '"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":1}}'
  local srv = mock.start(script(reply(200, (body:gsub("\\", "\\\\")))))
  local r = assert(model_for(srv):chat "x")
  T.eq(r.tool_calls[1]["function"].arguments, input)
  srv:stop()
end)

-- One script, two providers: llm.route.fallback moves a tool loop from an
-- OpenAI model to an Anthropic one mid-conversation. The answers are real
-- recordings from tests/fixtures/providers.
T.test("a two-turn tool loop through llm.route.fallback, OpenAI then Anthropic", function()
  local dir = os.getenv("LLMRUN_SOURCE_DIR") .. "/tests/fixtures/providers/"
  local function body_of(name)
    local f = assert(io.open(dir .. name .. ".body", "rb"))
    local s = f:read("a")
    f:close()
    return (s:gsub("\\", "\\\\"):gsub("\n", "\\n"))
  end
  local oai_srv <close> = mock.start(script(
    "status 200\nheader Content-Type: application/json\nbody " .. body_of("oai-chat-tool-ratelimit"),
    "status 500\nheader Content-Type: application/json\nbody {\"error\":{\"message\":\"down\"}}"))
  local ant_srv <close> = mock.start(script(
    "status 200\nheader Content-Type: application/json\nbody " .. body_of("ant-chat-text")))
  local route = llm.route.fallback {
    llm.model { name = "gpt-4o-mini", provider = "openai", base_url = oai_srv.url, api_key = "k", max_retries = 0 },
    llm.model { name = "claude-sonnet-4-5", provider = "anthropic", base_url = ant_srv.url, api_key = KEY },
  }
  local tools = { { type = "function", ["function"] = { name = "lookup_population",
    parameters = { type = "object", properties = { country = { type = "string" } } } } } }
  local messages = { { role = "user", content = "Can the country of Crumpet have dragons?" } }
  local r1 = assert(route:chat { messages = messages, tools = tools })
  T.eq(r1.provider, "openai")
  local call = r1.tool_calls[1]
  T.eq(call["function"].arguments, '{"country":"Crumpet"}')
  messages[#messages + 1] = { role = "assistant", content = r1.text ~= "" and r1.text or nil,
                              tool_calls = r1.tool_calls }
  messages[#messages + 1] = { role = "tool", tool_call_id = call.id, content = "123124" }
  local r2 = assert(route:chat { messages = messages, tools = tools })
  T.eq(r2.provider, "anthropic")
  T.ok(r2.text:find("Hello!", 1, true))
  local sent = cjson.decode(ant_srv:requests()[1].body)
  T.eq(sent.tools[1].name, "lookup_population")
  T.eq(sent.messages[2].content[1], { type = "tool_use", id = call.id, name = "lookup_population",
                                      input = { country = "Crumpet" } })
  T.eq(sent.messages[3], { role = "user", content = {
    { type = "tool_result", tool_use_id = call.id, content = "123124" } } })
end)
