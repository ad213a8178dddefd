-- The gateway (llmrun serve --proxy, lualib/llm/proxy*.lua) in process:
-- the client's bytes and the upstream's pass through unchanged, streams
-- pass through with the usage chunk handled, the cache and the call
-- pipeline see proxied calls with their tags, strategies rewrite, answer,
-- refuse and fail without taking the gateway down, proxy keys, budgets,
-- Anthropic clients in front of OpenAI-speaking upstreams and of
-- Anthropic, and a client that leaves cancels its upstream call.
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local http = require "_llm.http"
local proxy = require "llm.proxy"
local calls = require "llm.calls"

llm.log.off()
llm.sim.configure { profile = "zero" }

local JSON = { "Content-Type: application/json" }

local function post(url, body, headers)
  local h = { "Content-Type: application/json" }
  for _, l in ipairs(headers or {}) do h[#h + 1] = l end
  return assert(http.request { method = "POST", url = url, body = body, headers = h, timeout = 10 })
end

local function get(url)
  return assert(http.request { method = "GET", url = url, timeout = 10 })
end

-- every event of an SSE answer: list of {type=, data=}
local function stream_events(url, body, headers)
  local h = { "Content-Type: application/json" }
  for _, l in ipairs(headers or {}) do h[#h + 1] = l end
  local s = assert(http.stream { method = "POST", url = url, body = body, headers = h, framing = "sse",
                                 timeout = 10 })
  local out = {}
  while true do
    local ev, err = s:next()
    assert(not err, err)
    if not ev then break end
    out[#out + 1] = { type = ev.type, data = ev.data }
  end
  s:close()
  return out
end

local function start(opts)
  local p = assert(proxy.start(opts or {}))
  return p, p.url
end

local upstream_answer = '{"id":"chatcmpl-up","object":"chat.completion","created":1,"model":"m1",'
  .. '"choices":[{"index":0,"message":{"role":"assistant","content":"from upstream"},'
  .. '"finish_reason":"stop","x_vendor":{"kept":[]}}],'
  .. '"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9},"system_fingerprint":"fp_x"}'

local function json_block(body)
  return "status 200\nheader Content-Type: application/json\nbody " .. body:gsub("\\", "\\\\")
end

T.test("the client's bytes go upstream as sent; the upstream's come back as sent", function()
  local up <close> = mock.start(mock.script(json_block(upstream_answer)))
  local p <close> = start { config = { models = { m1 = { provider = "openai", base_url = up.url .. "/v1" } } } }
  -- unknown fields, an empty array, a big integer, a key order of its own
  local sent = '{"messages":[{"role":"user","content":"hi"}],"model":"m1","tools":[],'
    .. '"seed":12345678901234567,"x_custom":{"a":[],"b":1.50}}'
  local r = post(p.url .. "/v1/chat/completions", sent, { "Authorization: Bearer sk-client-1" })
  T.eq(r.status, 200)
  T.eq(r.body, upstream_answer)
  local reqs = up:requests()
  T.eq(#reqs, 1)
  T.eq(reqs[1].path, "/v1/chat/completions")
  T.eq(reqs[1].body, sent)
  -- passthrough auth: the client's own key reaches the upstream
  T.eq(reqs[1].headers.authorization, "Bearer sk-client-1")
end)

local function chunk(delta, finish)
  return "data: " .. cjson.encode { id = "c1", object = "chat.completion.chunk", model = "m1",
    choices = { { index = 0, delta = delta, finish_reason = finish or cjson.null } } } .. "\\n\\n"
end
local usage_chunk = 'data: {"id":"c1","object":"chat.completion.chunk","choices":[],'
  .. '"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\\n\\n'
local sse_stream = table.concat({
  "status 200\nheader Content-Type: text/event-stream\nchunked",
  "chunk " .. chunk({ role = "assistant", content = "" }),
  "chunk " .. chunk({ content = "Hel" }),
  "chunk " .. chunk({ content = "lo" }),
  "chunk " .. chunk({}, "stop"),
  "chunk " .. usage_chunk,
  "chunk data: [DONE]\\n\\n",
  "end",
}, "\n")

T.test("a stream passes through; usage is asked for, and shown only to a client that asked", function()
  local up <close> = mock.start(mock.script(sse_stream))
  local p <close> = start { config = { models = { m1 = { provider = "openai", base_url = up.url .. "/v1" } } } }
  local finished, ended_first = {}, {}
  local function hook(call, resp)
    if resp then
      finished[#finished + 1] = resp
      -- the client's stream had ended before the call's finish stages ran
      ended_first[#ended_first + 1] = p.server:stats().responses == #finished
    end
  end
  calls.on_finish(hook)
  local _ <close> = setmetatable({}, { __close = function() calls.off(hook) end })
  local evs = stream_events(p.url .. "/v1/chat/completions",
    '{"model":"m1","stream":true,"messages":[{"role":"user","content":"hi"}]}')
  local body = cjson.decode(up:requests()[1].body)
  T.eq(body.stream_options, { include_usage = true })
  T.eq(#evs, 5) -- no usage chunk
  T.eq(evs[5].data, "[DONE]")
  T.eq(cjson.decode(evs[2].data).choices[1].delta.content, "Hel")
  T.eq(finished[1].usage.prompt_tokens, 5) -- the pipeline saw the usage
  T.eq(finished[1].text, "Hello")
  evs = stream_events(p.url .. "/v1/chat/completions",
    '{"model":"m1","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}')
  T.eq(#evs, 6)
  T.eq(cjson.decode(evs[5].data).usage.total_tokens, 7)
  T.eq(ended_first, { true, true })
end)

T.test("cache hits, tags and cases from headers, the simulator by default", function()
  local path = T.tmpdb()
  local cache = assert(llm.cache.open { path = path })
  local p <close> = start { cache = cache }
  local seen = {}
  -- answered: the client had its answer before the call's finish stages
  -- (call log, hit counts) ran, for a hit as for a forwarded call
  local function hook(call, resp)
    seen[#seen + 1] = { tag = call.tag, case = call.case, cached = resp and resp.cached,
                        answered = p.server:stats().responses == #seen + 1 }
  end
  calls.on_finish(hook)
  local _ <close> = setmetatable({}, { __close = function() calls.off(hook) end }) -- even when a check fails
  local body = '{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":"What is 17 + 25?"}]}'
  local a = post(p.url .. "/v1/chat/completions", body, { "x-llmrun-tag: before", "x-llmrun-case: q1" })
  local b = post(p.url .. "/v1/chat/completions", body, { "x-llmrun-tag: before", "x-llmrun-case: q1" })
  T.eq(a.status, 200)
  T.eq(b.status, 200)
  local da, db = cjson.decode(a.body), cjson.decode(b.body)
  T.eq(db.choices[1].message.content, da.choices[1].message.content)
  T.eq(db.usage.prompt_tokens, da.usage.prompt_tokens) -- the original usage, shown again
  T.eq(seen[1], { tag = "before", case = "q1", cached = false, answered = true })
  T.eq(seen[2], { tag = "before", case = "q1", cached = "exact", answered = true })
  local st = cjson.decode(get(p.url .. "/llmrun/stats").body)
  T.eq(st.cache_hits.exact, 1)
  T.eq(st.requests, 2)
  local metrics = get(p.url .. "/metrics").body
  T.ok(metrics:find('llmrun_proxy_requests_total{endpoint="chat"} 2', 1, true), metrics)
  T.ok(metrics:find('llmrun_proxy_cache_hits_total{kind="exact"} 1', 1, true))
  -- a streamed request for the same thing is a hit too, rendered as SSE
  local evs = stream_events(p.url .. "/v1/chat/completions", (body:gsub("^{", '{"stream":true,')))
  T.eq(cjson.decode(evs[1].data).choices[1].delta.content, da.choices[1].message.content)
  T.eq(evs[#evs].data, "[DONE]")
  calls.off(hook)
  cache:close()
  T.remove_db(path)
end)

T.test("a hit's answer is written directly: the same object and headers as from the table", function()
  -- proxy_openai.completion_json writes the usual answer without building
  -- the table; every shape must decode to what completion() encodes
  local O = require "llm.proxy_openai"
  local function strip(doc)
    T.ok(type(doc.id) == "string" and doc.id:find("^chatcmpl%-llmrun"), tostring(doc.id))
    T.ok(type(doc.created) == "number" and doc.created == math.floor(doc.created) and doc.created > 1e9)
    doc.id, doc.created = nil, nil
    return doc
  end
  local saved = { usage = { prompt_tokens = 20, completion_tokens = 16, cached_tokens = 4 } }
  local shapes = {
    { text = "Two, three, five.", finish_reason = "stop", model = "gpt-4o-mini", usage = { prompt_tokens = 3,
      completion_tokens = 2 } },
    { text = 'quotes " and \\ back\nslash, \u{e9}\u{1F600}, </script> \0 nul', cached = "exact", saved = saved },
    { text = "", finish_reason = "length", cached = "semantic", saved = { usage = { prompt_tokens = 1 } } },
    { finish_reason = "stop" }, -- no text, no usage, no model: the client's model
    { text = "t", choices = { { index = 0 } } }, -- one choice: the usual shape
    { text = "", tool_calls = { { id = "c1", type = "function", ["function"] = { name = "f", arguments = "{}" } } } },
    { text = "a", choices = { { index = 0, message = { content = "a" } }, { index = 1, message = { content = "b" } } } },
  }
  for i, r in ipairs(shapes) do
    local via_table = strip(cjson.decode(O.encode(O.completion(r, "client-model"))))
    for pass = 1, 2 do -- the second from the part kept for this text
      T.eq(strip(cjson.decode(O.completion_json(r, "client-model"))), via_table, "shape " .. i .. " pass " .. pass)
    end
  end
  -- the same text with another model, finish reason or usage: made again
  local base = { text = "same", finish_reason = "stop", usage = { prompt_tokens = 1, completion_tokens = 2 } }
  local variants = {
    base,
    { text = "same", finish_reason = "length", usage = base.usage },
    { text = "same", finish_reason = "stop", model = "other", usage = base.usage },
    { text = "same", finish_reason = "stop", usage = { prompt_tokens = 1, completion_tokens = 3 } },
    { text = "same", finish_reason = "stop", usage = { prompt_tokens = 1, completion_tokens = 2, cached_tokens = 1 } },
    { text = "same", finish_reason = "stop" },
    base,
  }
  for i, r in ipairs(variants) do
    T.eq(strip(cjson.decode(O.completion_json(r, "client-model"))),
         strip(cjson.decode(O.encode(O.completion(r, "client-model")))), "variant " .. i)
  end
  -- through the gateway: a hit's body and headers are those of any answer
  -- (the headers seen as the handler gives them to the server: the test
  -- client keeps only a few)
  local path = T.tmpdb()
  local cache = assert(llm.cache.open { path = path })
  local p <close> = start { cache = cache }
  local body = '{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":"What is 2 + 2?"}]}'
  local a = post(p.url .. "/v1/chat/completions", body)
  for _ = 1, 2 do -- the second hit uses the kept header lines
    local got = {}
    p:handle { method = "POST", path = "/v1/chat/completions", headers = {}, body = body, client = "127.0.0.1:1",
      respond = function(_, status, headers, answer) got = { status = status, headers = headers, body = answer } end }
    T.eq(got.status, 200)
    local h = {}
    for k, v in pairs(got.headers) do
      if math.type(k) == "integer" then h[v:match("^([^:]+):"):lower()] = v:match(":%s*(.*)$") else h[k:lower()] = v end
    end
    T.eq(h, { ["content-type"] = "application/json", ["x-llmrun-cache"] = "exact", ["x-llmrun-cost"] = "0.00000000" })
    local da, db = cjson.decode(a.body), cjson.decode(got.body)
    T.eq(db.choices[1].message.content, da.choices[1].message.content)
    T.eq(db.choices[1].finish_reason, da.choices[1].finish_reason)
    for _, k in ipairs { "prompt_tokens", "completion_tokens", "total_tokens" } do T.eq(db.usage[k], da.usage[k]) end
    T.eq(db.model, da.model)
  end
  cache:close()
  T.remove_db(path)
end)

T.test("upstream models: one per name and client key where keys pass through", function()
  local upstream = require "llm.proxy_upstream"
  local cfg = { models = { ["*"] = { provider = "openai", base_url = "http://127.0.0.1:9/v1" } } }
  local u = upstream.new { config = cfg, passthrough = true }
  local a1, a2 = u:model("gpt-4o-mini", "sk-a"), u:model("gpt-4o-mini", "sk-a")
  local b, none = u:model("gpt-4o-mini", "sk-b"), u:model("gpt-4o-mini")
  local other = u:model("gpt-4o", "sk-a")
  T.ok(a1 == a2, "the same name and key: the same model")
  T.ok(a1 ~= b and a1 ~= none and b ~= none and other ~= a1)
  T.eq({ a1.name, other.name }, { "gpt-4o-mini", "gpt-4o" })
  T.eq({ a1.cfg.api_key, b.cfg.api_key }, { "sk-a", "sk-b" })
  -- keys that do not pass through: one model per name
  local g = upstream.new { config = cfg, passthrough = false }
  T.ok(g:model("gpt-4o-mini", "sk-a") == g:model("gpt-4o-mini", "sk-b"))
end)

T.test("the call log has proxied calls with their tag, case and client address", function()
  local path = T.tmpdb()
  llm.log.use(path)
  llm.log.on()
  local p <close> = start {}
  local r = post(p.url .. "/v1/chat/completions", '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
    { "x-llmrun-tag: gw", "x-llmrun-case: c7", "Authorization: Bearer sk-secret-client" })
  T.eq(r.status, 200)
  assert(llm.log.flush())
  local reader = assert(llm.log.reader(path))
  local rows = reader:calls(nil, 10)
  reader:close()
  llm.log.off()
  T.eq(#rows, 1)
  T.eq(rows[1].tag, "gw")
  T.eq(rows[1].case, "c7")
  T.ok(rows[1].client:match("^127%.0%.0%.1:%d+$"), rows[1].client)
  for _, suffix in ipairs { "", "-wal" } do
    local f = io.open(path .. suffix, "rb")
    if f then
      T.eq(f:read("a"):find("sk-secret-client", 1, true), nil) -- never the client's key
      f:close()
    end
  end
  T.remove_db(path)
end)

T.test("a semantic cache answers a paraphrase", function()
  local path = T.tmpdb()
  local cache = assert(llm.cache.semantic { path = path, threshold = 0.8,
    embed = llm.model "text-embedding-3-small" })
  local p <close> = start { cache = cache }
  local function ask(q)
    return post(p.url .. "/v1/chat/completions", cjson.encode { model = "gpt-4o-mini", temperature = 0,
      messages = { { role = "user", content = q } } })
  end
  local a = ask("What is the capital city of France?")
  local b = ask("What's the capital city of France?")
  T.eq(b.status, 200)
  T.eq(cjson.decode(b.body).choices[1].message.content, cjson.decode(a.body).choices[1].message.content)
  T.eq(cjson.decode(get(p.url .. "/llmrun/stats").body).cache_hits.semantic, 1)
  cache:close()
  T.remove_db(path)
end)

T.test("strategies rewrite, route, answer, refuse; an error answers 500 and the gateway goes on", function()
  local up <close> = mock.start(mock.script(json_block(upstream_answer)))
  local strategy = {
    on_request = function(req, ctx)
      local last = req.messages[#req.messages].content
      if last == "boom" then error("strategy exploded") end
      if last == "hello" then return "Hi from the strategy." end
      if last == "forbidden" then return { status = 403, message = "not here" } end
      if last == "long" then
        req.messages[#req.messages].content = "short"
        req.model = "m1"
      end
      T.eq(ctx.client:match("^127%.0%.0%.1:%d+$") ~= nil, true)
    end,
    on_response = function(resp) resp.seen_by_strategy = true end,
  }
  local p <close> = start { strategy = strategy,
    config = { models = { m1 = { provider = "openai", base_url = up.url .. "/v1" } } } }
  local url = p.url .. "/v1/chat/completions"
  local r = post(url, '{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}')
  T.eq(cjson.decode(r.body).choices[1].message.content, "Hi from the strategy.")
  r = post(url, '{"model":"gpt-4o","messages":[{"role":"user","content":"forbidden"}]}')
  T.eq(r.status, 403)
  T.eq(cjson.decode(r.body).error.message, "not here")
  r = post(url, '{"model":"gpt-4o","messages":[{"role":"user","content":"boom"}]}')
  T.eq(r.status, 500)
  T.ok(cjson.decode(r.body).error.message:find("strategy exploded", 1, true))
  r = post(url, '{"model":"gpt-4o","messages":[{"role":"user","content":"long"}],"x_keep":[]}')
  T.eq(r.status, 200)
  local sent = cjson.decode(up:requests()[1].body)
  T.eq(sent.model, "m1")
  T.eq(sent.messages[1].content, "short")
  T.eq(sent.x_keep ~= nil, true)
  T.eq(cjson.decode(get(p.url .. "/llmrun/stats").body).counters.strategy_errors, 1)
end)

T.test("config routes: llm.route.fallback moves on past a failing upstream", function()
  local p <close> = start { config = {
    models = { dead = { provider = "openai", base_url = "http://127.0.0.1:9/v1", max_retries = 0 } },
    routes = { smart = { "dead", "gpt-4o-mini" } } } }
  local r = post(p.url .. "/v1/chat/completions", '{"model":"smart","messages":[{"role":"user","content":"hi"}]}')
  T.eq(r.status, 200)
  T.ok(#cjson.decode(r.body).choices[1].message.content > 0)
  local names = cjson.decode(get(p.url .. "/v1/models").body).data
  T.eq(#names, 2) -- the configured names: dead, smart
end)

T.test("proxy keys: clients must present one; the upstream gets the gateway's key", function()
  local up <close> = mock.start(mock.script(json_block(upstream_answer)))
  local p <close> = start { proxy_keys = { "pk-1" },
    config = { models = { m1 = { provider = "openai", base_url = up.url .. "/v1", api_key = "sk-upstream" } } } }
  local body = '{"model":"m1","messages":[{"role":"user","content":"hi"}]}'
  local r = post(p.url .. "/v1/chat/completions", body)
  T.eq(r.status, 401)
  T.eq(cjson.decode(r.body).error.code, "invalid_api_key")
  r = post(p.url .. "/v1/messages", '{"model":"m1","max_tokens":5,"messages":[]}', { "x-api-key: wrong" })
  T.eq(r.status, 401)
  T.eq(cjson.decode(r.body).type, "error") -- Anthropic's shape on its route
  r = post(p.url .. "/v1/chat/completions", body, { "Authorization: Bearer pk-1" })
  T.eq(r.status, 200)
  T.eq(up:requests()[1].headers.authorization, "Bearer sk-upstream")
end)

T.test("budgets refuse with 429 and x-should-retry: false", function()
  local p <close> = start {}
  local b <close> = llm.budget { usd = 0, name = "test_proxy" }
  local r = post(p.url .. "/v1/chat/completions", '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}')
  T.eq(r.status, 429)
  T.eq(cjson.decode(r.body).error.code, "budget_exceeded")
  T.eq(r.headers["x-should-retry"], "false")
end)

T.test("Anthropic clients in front of an OpenAI-speaking upstream (the simulator)", function()
  local p <close> = start {}
  local url = p.url .. "/v1/messages"
  local body = '{"model":"claude-3-5-haiku-latest","max_tokens":30,"system":"Be brief.",'
    .. '"messages":[{"role":"user","content":[{"type":"text","text":"What is 17 + 25?"}]}]}'
  local r = post(url, body, { "anthropic-version: 2023-06-01" })
  T.eq(r.status, 200)
  local msg = cjson.decode(r.body)
  T.eq(msg.type, "message")
  T.eq(msg.role, "assistant")
  T.eq(msg.content[1].type, "text")
  T.ok(#msg.content[1].text > 0)
  T.ok(msg.usage.input_tokens > 0)
  local evs = stream_events(url, (body:gsub("^{", '{"stream":true,')))
  local kinds, text = {}, {}
  for _, e in ipairs(evs) do
    kinds[#kinds + 1] = e.type
    local d = cjson.decode(e.data)
    if d.type == "content_block_delta" then text[#text + 1] = d.delta.text end
  end
  T.eq(kinds[1], "message_start")
  T.eq(kinds[2], "content_block_start")
  T.eq(kinds[#kinds - 1], "message_delta")
  T.eq(kinds[#kinds], "message_stop")
  T.eq(table.concat(text), msg.content[1].text) -- the simulator is deterministic
  r = post(url, '{"model":"claude-3-5-haiku-latest","messages":[]}')
  T.eq(r.status, 400)
  T.eq(cjson.decode(r.body).error.type, "invalid_request_error")
end)

T.test("Anthropic tools map to OpenAI tools and back", function()
  local answer = '{"id":"c","object":"chat.completion","model":"m1","choices":[{"index":0,"message":'
    .. '{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":'
    .. '{"name":"get_weather","arguments":"{\\"city\\":\\"Paris\\"}"}}]},"finish_reason":"tool_calls"}],'
    .. '"usage":{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25}}'
  local up <close> = mock.start(mock.script(json_block(answer)))
  local p <close> = start { config = { models = { m1 = { provider = "openai", base_url = up.url .. "/v1" } } } }
  local r = post(p.url .. "/v1/messages", cjson.encode {
    model = "m1", max_tokens = 100,
    tools = { { name = "get_weather", description = "Weather", input_schema = { type = "object",
      properties = { city = { type = "string" } } } } },
    tool_choice = { type = "any" },
    messages = {
      { role = "user", content = "Weather in Paris?" },
      { role = "assistant", content = { { type = "tool_use", id = "toolu_0", name = "get_weather", input = { city = "Rome" } } } },
      { role = "user", content = { { type = "tool_result", tool_use_id = "toolu_0", content = "sunny" } } },
    } })
  T.eq(r.status, 200)
  local msg = cjson.decode(r.body)
  T.eq(msg.stop_reason, "tool_use")
  T.eq(msg.content[1].type, "tool_use")
  T.eq(msg.content[1].name, "get_weather")
  T.eq(msg.content[1].input, { city = "Paris" })
  local sent = cjson.decode(up:requests()[1].body)
  T.eq(sent.tools[1]["function"].name, "get_weather")
  T.eq(sent.tool_choice, "required")
  T.eq(sent.messages[2].tool_calls[1].id, "toolu_0")
  T.eq(sent.messages[3], { role = "tool", tool_call_id = "toolu_0", content = "sunny" })
end)

T.test("Anthropic clients in front of Anthropic: bytes pass through", function()
  local answer = '{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":'
    .. '[{"type":"text","text":"hey","citations":null}],"stop_reason":"end_turn","stop_sequence":null,'
    .. '"usage":{"input_tokens":4,"output_tokens":1}}'
  local up <close> = mock.start(mock.script(json_block(answer)))
  local p <close> = start { config = { models = { ["claude-x"] = { provider = "anthropic", base_url = up.url } } } }
  local sent = '{"model":"claude-x","max_tokens":10,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],'
    .. '"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"u"}}'
  local r = post(p.url .. "/v1/messages", sent, { "x-api-key: sk-ant-client",
    "anthropic-version: 2023-06-01", "anthropic-beta: prompt-caching-2024-07-31" })
  T.eq(r.status, 200)
  T.eq(r.body, answer)
  local req = up:requests()[1]
  T.eq(req.headers["anthropic-beta"], "prompt-caching-2024-07-31")
  T.eq(select(2, req.head:lower():gsub("anthropic%-version:", "")), 1) -- once, not twice
  T.eq(req.path, "/v1/messages")
  T.eq(req.body, sent)
  T.eq(req.headers["x-api-key"], "sk-ant-client")
end)

T.test("OpenAI clients in front of Anthropic: translated both ways", function()
  local answer = '{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":'
    .. '[{"type":"text","text":"hey there"}],"stop_reason":"max_tokens","stop_sequence":null,'
    .. '"usage":{"input_tokens":4,"output_tokens":2}}'
  local up <close> = mock.start(mock.script(json_block(answer)))
  local p <close> = start { config = { models = { ["claude-x"] = { provider = "anthropic", base_url = up.url } } } }
  local r = post(p.url .. "/v1/chat/completions", '{"model":"claude-x","max_tokens":7,'
    .. '"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}]}',
    { "Authorization: Bearer sk-ant-client" })
  T.eq(r.status, 200)
  local doc = cjson.decode(r.body)
  T.eq(doc.object, "chat.completion")
  T.eq(doc.choices[1].message.content, "hey there")
  T.eq(doc.choices[1].finish_reason, "length")
  T.eq(doc.usage.prompt_tokens, 4)
  local req = up:requests()[1]
  T.eq(req.path, "/v1/messages")
  T.eq(req.headers["x-api-key"], "sk-ant-client") -- the client's key, in Anthropic's header
  local sent = cjson.decode(req.body)
  T.eq(sent.system, "Be brief.")
  T.eq(sent.max_tokens, 7)
end)

T.test("a client that leaves cancels its upstream call", function()
  local slow = table.concat({
    "status 200\nheader Content-Type: text/event-stream\nchunked",
    "chunk " .. chunk({ role = "assistant", content = "a" }),
    "sleep 2",
    "chunk " .. chunk({ content = "b" }),
    "chunk data: [DONE]\\n\\n",
    "end",
  }, "\n")
  local up <close> = mock.start(mock.script(slow))
  local p <close> = start { config = { models = { m1 = { provider = "openai", base_url = up.url .. "/v1" } } } }
  local ended
  local function hook(call, resp, err) ended = { err = err, t = llm.now() } end
  calls.on_finish(hook)
  local s = assert(http.stream { method = "POST", url = p.url .. "/v1/chat/completions", framing = "sse",
    headers = JSON, body = '{"model":"m1","stream":true,"messages":[{"role":"user","content":"hi"}]}' })
  T.ok(s:next()) -- the first event arrived
  local t0 = llm.now()
  s:close()
  for _ = 1, 100 do
    if ended then break end
    llm.sleep(0.02)
  end
  calls.off(hook)
  T.ok(ended, "the upstream call ended")
  T.eq(ended.err.kind, "cancelled")
  T.ok(ended.t - t0 < 1, "cancelled at once, not after the upstream's 2 s")
end)

T.test("errors: unknown routes, bad JSON, embeddings and models", function()
  local p <close> = start {}
  local r = post(p.url .. "/v1/nope", "{}")
  T.eq(r.status, 404)
  T.eq(cjson.decode(r.body).error.code, "unknown_url")
  r = post(p.url .. "/v1/chat/completions", "{not json")
  T.eq(r.status, 400)
  r = post(p.url .. "/v1/embeddings", '{"model":"text-embedding-3-small","input":["a","b"],"dimensions":8}')
  T.eq(r.status, 200)
  local e = cjson.decode(r.body)
  T.eq(#e.data, 2)
  T.eq(#e.data[2].embedding, 8)
  r = post(p.url .. "/v1/embeddings", '{"model":"text-embedding-3-small","input":"a","dimensions":4,"encoding_format":"base64"}')
  T.eq(type(cjson.decode(r.body).data[1].embedding), "string")
  local m = cjson.decode(get(p.url .. "/v1/models").body)
  T.eq(m.object, "list")
  T.ok(#m.data > 0)
end)
