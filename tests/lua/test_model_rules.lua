-- Reasoning models and the one policy for parameters a model does not take
-- (llm.model_rules, llm.params): what goes on the wire, what raises, and the
-- one warning per model and parameter.
local T = ...
local mock = require "mock"
local cjson = require "cjson"

local ok_body = cjson.encode { id = "c1", object = "chat.completion", model = "o3",
  choices = { { index = 0, message = { role = "assistant", content = "ok" }, finish_reason = "stop" } },
  usage = { prompt_tokens = 3, completion_tokens = 5, total_tokens = 8,
            completion_tokens_details = { reasoning_tokens = 4 } } }

local function server()
  return mock.start(mock.script("status 200\nheader Content-Type: application/json\nbody " .. ok_body))
end

local function model(name, srv, extra)
  local spec = { name = name, provider = "openai", base_url = srv.url, api_key = "k" }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return llm.model(spec)
end

local function sent(srv, i)
  return cjson.decode(srv:requests()[i or #srv:requests()].body)
end

local Q = { { role = "user", content = "hi" } }

T.test("o-series: max_tokens goes out as max_completion_tokens, sampling knobs are dropped", function()
  local srv <close> = server()
  local m = model("o3", srv)
  local r = assert(m:chat { messages = Q, max_tokens = 300, temperature = 0.2, top_p = 0.5,
                            presence_penalty = 0.1, frequency_penalty = 0.1, seed = 7 })
  T.eq(r.usage.reasoning_tokens, 4)
  local b = sent(srv)
  T.eq(b.max_completion_tokens, 300)
  T.eq({ b.max_tokens, b.temperature, b.top_p, b.presence_penalty, b.frequency_penalty }, {})
  T.eq(b.seed, 7, "what the family takes passes unchanged")
  -- temperature = 1 is the default: accepted, and left out
  assert(m:chat { messages = Q, temperature = 1 })
  T.eq(sent(srv).temperature, nil)
  -- an explicit max_completion_tokens wins over max_tokens
  assert(m:chat { messages = Q, max_tokens = 10, max_completion_tokens = 20 })
  T.eq({ sent(srv).max_completion_tokens, sent(srv).max_tokens }, { 20 })
end)

T.test("what changes the answer's shape raises; drop_params decides the rest", function()
  local srv <close> = server()
  local e = T.err(function() model("o4-mini", srv):chat { messages = Q, logprobs = true } end,
    "parameter 'logprobs' is not supported for model \"o4-mini\" (provider openai, o-series)")
  T.ok(tostring(e):find("drop_params = true", 1, true))
  T.err(function() model("o3", srv, { drop_params = false }):chat { messages = Q, temperature = 0.2 } end,
    "parameter 'temperature' = 0.2 is not supported (only 1)")
  assert(model("o3", srv, { drop_params = true }):chat { messages = Q, logprobs = true, top_logprobs = 3 })
  T.eq({ sent(srv).logprobs, sent(srv).top_logprobs }, {})
  T.eq(#srv:requests(), 1, "the raising calls sent nothing")
  T.err(function() llm.model { name = "o3", drop_params = "yes" } end, "drop_params' must be a boolean")
end)

T.test("gpt-5 families: gpt-5 rejects temperature, gpt-5.1 takes it without reasoning, gpt-5-chat is a chat model", function()
  local srv <close> = server()
  assert(model("gpt-5-mini", srv):chat { messages = Q, temperature = 0.3, max_tokens = 50 })
  T.eq({ sent(srv).temperature, sent(srv).max_completion_tokens }, { nil, 50 })
  T.err(function() model("gpt-5", srv):chat { messages = Q, stop = "END" } end, "'stop' is not supported")
  assert(model("gpt-5.1", srv):chat { messages = Q, temperature = 0.3 })
  T.eq(sent(srv).temperature, 0.3, "gpt-5.1 with no reasoning_effort (its default is none)")
  assert(model("gpt-5.1", srv):chat { messages = Q, temperature = 0.3, reasoning_effort = "high" })
  T.eq({ sent(srv).temperature, sent(srv).reasoning_effort }, { nil, "high" })
  assert(model("openai/gpt-5-chat-latest", srv):chat { messages = Q, temperature = 0.3, max_tokens = 9 })
  T.eq({ sent(srv).temperature, sent(srv).max_tokens }, { 0.3, 9 })
  assert(model("gpt-4o", srv):chat { messages = Q, temperature = 0.3, max_tokens = 9, logprobs = true })
  T.eq({ sent(srv).temperature, sent(srv).max_tokens, sent(srv).logprobs }, { 0.3, 9, true })
end)

T.test("streams follow the same rules", function()
  local sse = 'data: {"id":"c","model":"o3","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\\n\\n'
    .. 'data: [DONE]\\n\\n'
  local srv <close> = mock.start("status 200\nheader Content-Type: text/event-stream\nbody " .. sse .. "\n")
  local r = assert(model("o3", srv):stream({ messages = Q, max_tokens = 5, temperature = 0.5 },
    { on_delta = function() end }))
  T.eq(r.text, "ok")
  T.eq({ sent(srv).max_completion_tokens, sent(srv).temperature, sent(srv).stream }, { 5, nil, true })
end)

T.test("a dropped parameter warns once per model and parameter", function()
  local srv <close> = server()
  local f = os.tmpname()
  local h = assert(io.open(f, "w"))
  h:write([[
local url = ...
for _, name in ipairs { "o3", "o3", "o3", "o4-mini" } do
  local m = llm.model { name = name, provider = "openai", base_url = url, api_key = "k" }
  assert(m:chat { messages = { { role = "user", content = "hi" } }, temperature = 0.2, top_p = 0.9 })
end
]])
  h:close()
  local status, _, err = T.llmrun(f .. " " .. srv.url)
  os.remove(f)
  T.eq(status, 0, err)
  local _, n = err:gsub("llmrun: warning: parameter", "")
  T.eq(n, 4, "temperature and top_p, for o3 and for o4-mini: " .. err)
end)

T.test("the cache key is made from what is sent", function()
  local srv <close> = server()
  local m = model("o3", srv)
  T.eq(llm.cache.key(m, { messages = Q, temperature = 0.2 }), llm.cache.key(m, { messages = Q, temperature = 0.9 }))
  T.ok(llm.cache.key(m, { messages = Q, max_tokens = 5 }) ~= llm.cache.key(m, { messages = Q, max_tokens = 6 }))
end)
