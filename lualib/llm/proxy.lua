-- llmrun serve --proxy: a gateway that speaks the OpenAI and Anthropic
-- APIs in front of any app, with llmrun's machinery on every call (cache,
-- budgets, retries, routes, the call log) and the user's Lua strategy on
-- live traffic. Each request runs as a task on the same event loop as the
-- upstream calls (llm.serve).
--
--   local p = require("llm.proxy").start { port = 8080, cache = cache,
--     strategy = { on_request = fn, on_response = fn }, config = cfg,
--     proxy_keys = { "k1" }, host = "127.0.0.1" }
--   p.url  p:stats()  p:close()
--
-- Endpoints: POST /v1/chat/completions (JSON and SSE), POST /v1/embeddings,
-- GET /v1/models, POST /v1/messages (Anthropic; JSON and SSE), GET
-- /llmrun/stats (JSON), GET /metrics (Prometheus text).
--
-- A request goes upstream as the client sent it (its bytes) when the
-- model's upstream speaks the client's API and no strategy changed it; it
-- is translated otherwise (an Anthropic client in front of the simulator
-- or an OpenAI-compatible server, an OpenAI client in front of Anthropic,
-- a strategy's router). Strategies: see lualib/llm/proxy_strategy.lua.
local cjson = require "cjson"
local loop = require "_llm.loop"
local serve = require "llm.serve"
local forward = require "llm.proxy_forward"
local O = require "llm.proxy_openai"
local A = require "llm.proxy_anthropic"
local upstream = require "llm.proxy_upstream"
local pstats = require "llm.proxy_stats"
local context = require "llm.context"
local errors = require "llm.errors"

local M = {}

local Proxy = {}
Proxy.__index = Proxy

local JSON = { ["Content-Type"] = "application/json" }
local SSE = { ["Content-Type"] = "text/event-stream", ["Cache-Control"] = "no-cache" }

-- ---- answers ---------------------------------------------------------------------------

-- An error answer in the client's API shape. Refusals the client should
-- not retry (a budget spent, a strategy's rejection) say so.
local function fail(ctx, status, message, etype, code, no_retry)
  ctx.status = status
  local h = { ["Content-Type"] = "application/json" }
  if no_retry then h["x-should-retry"] = "false" end
  if ctx.api == "anthropic" then
    return status, h, A.error_body(message, etype)
  end
  return status, h, O.error_body(message, etype, code)
end

-- An llm.error from the pipeline -> status, type for the client.
local function from_error(ctx, err)
  if type(err) ~= "table" then return fail(ctx, 500, tostring(err), "api_error") end
  local kind = err.kind
  if kind == "budget" then
    return fail(ctx, 429, err.message, ctx.api == "anthropic" and "rate_limit_error" or "insufficient_quota",
      "budget_exceeded", true)
  elseif kind == "limit" then
    -- the pacer (llm.limits): a request above a per-minute limit never fits
    -- (429 "request too large", as OpenAI answers it, not to be retried);
    -- shared limits whose Redis is unreachable: 503
    if err.unreachable then
      return fail(ctx, 503, err.message, "api_error", "rate_limits_unavailable")
    end
    return fail(ctx, 429, err.message, ctx.api == "anthropic" and "rate_limit_error" or "tokens",
      "request_too_large", true)
  elseif kind == "http" and err.status then
    return fail(ctx, err.status, err.message, err.type or (ctx.api == "anthropic" and "api_error" or nil), err.code)
  elseif kind == "timeout" then
    return fail(ctx, 504, "upstream timeout: " .. tostring(err.message), "api_error", "upstream_timeout")
  elseif kind == "cancelled" then
    return fail(ctx, 499, tostring(err.message), "api_error")
  end
  return fail(ctx, 502, "upstream failure (" .. tostring(kind) .. "): " .. tostring(err.message),
    "api_error", "upstream_error")
end

-- Headers of an upstream answer worth passing on: request ids and rate
-- limits. Never anything about the upstream's credentials.
local function pass_headers(h, from)
  if type(from) ~= "table" then return h end
  for k, v in pairs(from) do
    if k == "x-request-id" or k == "request-id" or k:find("^x%-ratelimit") or k:find("^anthropic%-ratelimit")
       or k == "openai-processing-ms" then
      h[k] = v
    end
  end
  return h
end

local function answer_headers(base, resp)
  local h = {}
  for k, v in pairs(base) do h[k] = v end
  if resp then
    pass_headers(h, rawget(resp, "_headers"))
    if resp.cached then h["x-llmrun-cache"] = tostring(resp.cached) end
    if resp.cost then h["x-llmrun-cost"] = ("%.8f"):format(resp.cost) end
  end
  return h
end

-- The headers of a cache hit answered at once (its cost is 0, the pricing
-- stage's for every hit; no upstream headers): answer_headers' result, as
-- one list of lines, made once per kind of hit.
local HIT_HEADERS = {}
local function hit_headers(hit)
  local kind = hit.cached
  if kind == nil or rawget(hit, "_headers") ~= nil or hit.cost ~= 0 then return answer_headers(JSON, hit) end
  local h = HIT_HEADERS[kind]
  if not h then
    h = {}
    for k, v in pairs(answer_headers(JSON, hit)) do h[#h + 1] = k .. ": " .. v end
    table.sort(h)
    HIT_HEADERS[kind] = h
  end
  return h
end

-- ---- requests ------------------------------------------------------------------------------

local function client_key(headers)
  local a = headers.authorization
  local k = a and a:match("^[Bb]earer%s+(.-)%s*$")
  return k or headers["x-api-key"] or headers["api-key"]
end

local function decode_body(ctx, body)
  local ok, doc = pcall(cjson.decode, body)
  if not ok or type(doc) ~= "table" then
    return nil, fail(ctx, 400, "the request body is not a JSON object", "invalid_request_error")
  end
  return doc
end

-- A shallow fingerprint of what a strategy may change: the top-level
-- fields and each message with its content.
local function fingerprint(body)
  local fp = {}
  for k, v in pairs(body) do fp[k] = v end
  local msgs = {}
  if type(body.messages) == "table" then
    for i, m in ipairs(body.messages) do msgs[i] = { m, type(m) == "table" and m.content or nil } end
  end
  return fp, msgs
end

local function changed(body, fp, msgs)
  for k, v in pairs(body) do if fp[k] ~= v then return true end end
  for k in pairs(fp) do if body[k] == nil then return true end end
  local cur = type(body.messages) == "table" and body.messages or {}
  if #cur ~= #msgs then return true end
  for i, pair in ipairs(msgs) do
    local m = cur[i]
    if m ~= pair[1] or (type(m) == "table" and m.content ~= pair[2]) then return true end
  end
  return false
end

-- The body the call pipeline sees (the cache key, budgets): the client's
-- fields without `model`, as Model.normalize gives them for a script.
local function pipeline_body(body)
  local b = {}
  for k, v in pairs(body) do
    if k ~= "model" then b[k] = v end
  end
  return b
end

-- run_chat's request when no strategy runs: nothing in it
local NO_STRATEGY_REQ = setmetatable({}, { __newindex = function() error("read-only", 2) end })

local function is_model(x)
  return type(x) == "table" and type(x.chat) == "function"
end

-- ---- chat: OpenAI clients --------------------------------------------------------------------

local function openai_stream_from_model(self, req, ctx, target, body, opts)
  local id, created, model = O.new_id(), os.time(), body.model
  local want_usage = type(body.stream_options) == "table" and body.stream_options.include_usage == true
  local started = false
  local function start()
    if started then return true end
    started = true
    req:start(200, SSE)
    return req:write(O.sse(O.chunk(id, model, created, { role = "assistant", content = "" })))
  end
  local sopts = {}
  for k, v in pairs(opts) do sopts[k] = v end
  sopts.on_delta = function(d)
    start()
    if not req:write(O.sse(O.chunk(id, model, created, { content = d.text }))) then
      error(errors.new("cancelled", "the client closed the connection"))
    end
  end
  local sbody = pipeline_body(body)
  local resp, err = target:stream(sbody, sopts)
  if not resp then
    if not started then return from_error(ctx, err) end
    req:write(O.sse { error = { message = tostring(err.message or err), type = "api_error" } })
    req:finish()
    ctx.status = 502
    return
  end
  self:after_response(resp, ctx)
  start()
  req:write(O.stream_tail(id, model, created, resp, want_usage))
  req:finish()
  ctx.status = 200
end

function Proxy:chat(req, ctx)
  local body, e1, e2, e3 = decode_body(ctx, req.body)
  if not body then return e1, e2, e3 end
  if type(body.model) ~= "string" or type(body.messages) ~= "table" then
    return fail(ctx, 400, "a chat request needs a model and messages", "invalid_request_error")
  end
  return self:run_chat(req, ctx, body, "openai")
end

-- Shared by both APIs: body is OpenAI-shaped (an Anthropic client's was
-- mapped); native is the client's own body and its API.
function Proxy:run_chat(req, ctx, body, api, native)
  ctx.model = body.model
  local stream = body.stream == true
  ctx.stream = stream
  local strat = self.strategy
  local dirty = false
  -- what a strategy sees and may change (no strategy: the client's model)
  local preq = NO_STRATEGY_REQ
  if strat and strat.on_request then
    preq = { api = api, endpoint = "chat", model = body.model, body = native or body,
             messages = (native or body).messages, stream = stream, headers = req.headers,
             client = req.client, tag = ctx.tag, case = ctx.case }
    local fbody = native or body
    local fp, msgs = fingerprint(fbody)
    local ok, verdict = pcall(strat.on_request, preq, ctx)
    if not ok then
      self:strategy_error("on_request", verdict)
      return fail(ctx, 500, "strategy error in on_request: " .. tostring(verdict), "api_error", "strategy_error")
    end
    if type(preq.body) == "table" and preq.body ~= fbody then
      -- a new body altogether: it replaces the client's
      fbody, preq.changed = preq.body, true
      if native then native = fbody else body = fbody end
      preq.messages = fbody.messages
      if type(fbody.model) == "string" and preq.model == body.model then preq.model = fbody.model end
    end
    if preq.messages ~= fbody.messages then fbody.messages = preq.messages end
    if preq.model ~= body.model then
      fbody.model = preq.model
      if native then body.model = preq.model end
    end
    if native and (preq.changed == true or fbody.messages ~= fp.messages or changed(fbody, fp, msgs)) then
      -- the Anthropic body changed: map it again
      local mapped = A.to_openai(native)
      for k in pairs(body) do body[k] = nil end
      for k, v in pairs(mapped) do body[k] = v end
    end
    dirty = preq.changed == true or changed(fbody, fp, msgs)
    if verdict ~= nil and verdict ~= false then
      local answered = self:verdict(req, ctx, verdict, preq, body)
      if answered then return table.unpack(answered, 1, answered.n) end
    end
  end
  local model = preq.model or body.model
  ctx.model = model
  local key_fail = self:check_key_budget(ctx)
  if key_fail then return table.unpack(key_fail, 1, key_fail.n) end
  local target = preq.route or self.upstream:model(model, ctx.auth_key)
  if type(target) == "string" then target = self.upstream:model(target, ctx.auth_key) end
  local opts = { tag = ctx.tag, case = ctx.case }
  -- the upstream speaks the client's API: its bytes pass through
  local native_ok = is_model(target) and rawget(target, "format") ~= nil and target.format.name == api
  if api == "anthropic" and native_ok then
    -- Anthropic client, Anthropic upstream: the client's own body goes
    return self:chat_native(req, ctx, target, native, dirty, opts, "anthropic")
  end
  if api == "openai" and native_ok then
    return self:chat_native(req, ctx, target, body, dirty, opts, "openai")
  end
  if api == "anthropic" then return self:anthropic_translated(req, ctx, target, body, opts) end
  if stream then return openai_stream_from_model(self, req, ctx, target, body, opts) end
  local resp, err = target:chat(pipeline_body(body), opts)
  if not resp then return from_error(ctx, err) end
  resp = self:after_response(resp, ctx)
  ctx.status = 200
  return 200, answer_headers(JSON, resp), O.encode(O.completion(resp, body.model))
end

-- The client's bytes go upstream (re-encoded only if a strategy changed
-- the body); the upstream's bytes come back.
-- Client headers that belong to the request itself (API versions and
-- betas, OpenAI's organization and project) go along on pass-through.
local passed = {
  openai = { "openai-organization", "openai-project", "openai-beta" },
  anthropic = { "anthropic-version", "anthropic-beta" },
}

function Proxy:chat_native(req, ctx, m, body, dirty, opts, api)
  local wire = dirty and cjson.encode(body) or req.body
  -- the bytes decode to the pipeline's body: the cache keeps their key
  -- (llm.cache, call.opts.wire) instead of making it again per call
  opts.wire = wire
  local pass
  for _, name in ipairs(passed[api]) do
    local v = req.headers[name]
    if v and not v:find("[\r\n]") then
      pass = pass or {}
      pass[name] = v
    end
  end
  if pass then
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.pass_headers = pass
    opts = o
  end
  local pbody = api == "anthropic" and A.to_openai(body) or pipeline_body(body)
  if api == "anthropic" then pbody.model = nil end
  if not body.stream then
    -- with no on_response to run first, the client gets the upstream's
    -- answer as soon as it arrives, and a cache hit as soon as it is
    -- found; prices, the cache store and the call log follow (a cache
    -- store is a sqlite write)
    local answered = false
    local now_ok = not (self.strategy and self.strategy.on_response)
    local early = now_ok and function(res)
      answered = true
      ctx.status = 200
      req:respond(200, pass_headers({ ["Content-Type"] = "application/json" }, res.headers), res.body)
    end or nil
    local early_hit = now_ok and function(hit)
      answered = true
      ctx.status = 200
      hit.cost = 0 -- what the pricing stage gives every hit
      req:respond(200, hit_headers(hit), api == "anthropic" and A.message(hit, body.model)
        or O.completion_json(hit, body.model))
    end or nil
    local resp, err = forward.chat(m, pbody, wire, opts, early, early_hit)
    if answered then
      if resp then self:after_response(resp, ctx) end
      return
    end
    if not resp then return from_error(ctx, err) end
    resp = self:after_response(resp, ctx)
    ctx.status = 200
    local raw = rawget(resp, "_body")
    if raw and not resp.cached then return 200, answer_headers(JSON, resp), raw end
    if api == "anthropic" then return 200, answer_headers(JSON, resp), A.message(resp, body.model) end
    return 200, answer_headers(JSON, resp), O.completion_json(resp, body.model)
  end
  -- a stream: usage is asked for (the call log needs it); a client that
  -- did not ask for it does not get the usage chunk
  local strip_usage = false
  if api == "openai" and not (type(body.stream_options) == "table" and body.stream_options.include_usage) then
    local rest = not dirty and body.stream_options == nil and wire:match("^%s*{(.*)$")
    if rest then
      -- added in front, as text: the rest of the client's bytes stay as sent
      wire = '{"stream_options":{"include_usage":true},' .. rest
    else
      body.stream_options = type(body.stream_options) == "table" and body.stream_options or {}
      body.stream_options.include_usage = true
      wire = cjson.encode(body)
    end
    strip_usage = true
  end
  local started = false
  local function on_head(h)
    started = true
    ctx.status = 200
    req:start(200, pass_headers({ ["Content-Type"] = "text/event-stream", ["Cache-Control"] = "no-cache" }, h))
  end
  local function on_event(ev)
    local data = ev.data
    if strip_usage and data:find('"usage"', 1, true) and data:find('"choices"%s*:%s*%[%s*%]') then
      return true
    end
    local text = ev.type and ev.type ~= "message" and ("event: " .. ev.type .. "\ndata: " .. data .. "\n\n")
      or ("data: " .. data .. "\n\n")
    return req:write(text) ~= nil
  end
  local ended = false
  local function on_end() -- the client's stream ends with the upstream's
    ended = true
    req:finish()
  end
  local resp, err = forward.stream(m, pbody, wire, opts, on_head, on_event, on_end)
  if not resp then
    if not started then return from_error(ctx, err) end
    if err and err.kind ~= "cancelled" then
      local msg = tostring(err.message or err)
      req:write(api == "anthropic" and A.error_event(msg) or O.sse { error = { message = msg, type = "api_error" } })
      ctx.status = 502
    end
    if not ended then req:finish() end
    return
  end
  resp = self:after_response(resp, ctx)
  if not started then
    -- a cache hit: rendered in the client's API
    ctx.status = 200
    req:start(200, answer_headers(SSE, resp))
    if api == "anthropic" then
      local w = A.stream_writer(body.model)
      req:write(w.start(0) .. ((resp.text or "") ~= "" and w.text(resp.text) or "") .. w.finish(resp))
    else
      local id, created = O.new_id(), os.time()
      local chunks = O.sse(O.chunk(id, body.model, created, { role = "assistant", content = resp.text or "" }))
      req:write(chunks .. O.stream_tail(id, body.model, created, resp, not strip_usage))
    end
  end
  if not ended then req:finish() end
end

-- ---- chat: Anthropic clients -----------------------------------------------------------------

function Proxy:messages(req, ctx)
  local native, e1, e2, e3 = decode_body(ctx, req.body)
  if not native then return e1, e2, e3 end
  if type(native.model) ~= "string" or type(native.messages) ~= "table" then
    return fail(ctx, 400, "a messages request needs a model and messages", "invalid_request_error")
  end
  if type(native.max_tokens) ~= "number" then
    return fail(ctx, 400, "max_tokens: Field required", "invalid_request_error")
  end
  return self:run_chat(req, ctx, A.to_openai(native), "anthropic", native)
end

function Proxy:anthropic_translated(req, ctx, target, body, opts)
  local pbody = pipeline_body(body)
  if body.stream ~= true then
    local resp, err = target:chat(pbody, opts)
    if not resp then return from_error(ctx, err) end
    resp = self:after_response(resp, ctx)
    ctx.status = 200
    return 200, answer_headers(JSON, resp), A.message(resp, body.model)
  end
  local w = A.stream_writer(body.model)
  local started = false
  local function start()
    if started then return end
    started = true
    req:start(200, SSE)
    req:write(w.start(0))
  end
  local sopts = {}
  for k, v in pairs(opts) do sopts[k] = v end
  sopts.on_delta = function(d)
    start()
    if not req:write(w.text(d.text)) then
      error(errors.new("cancelled", "the client closed the connection"))
    end
  end
  local resp, err = target:stream(pbody, sopts)
  if not resp then
    if not started then return from_error(ctx, err) end
    req:write(A.error_event(tostring(err.message or err)))
    req:finish()
    ctx.status = 502
    return
  end
  resp = self:after_response(resp, ctx)
  start()
  req:write(w.finish(resp))
  req:finish()
  ctx.status = 200
end

-- ---- embeddings and models ---------------------------------------------------------------------

function Proxy:embeddings(req, ctx)
  local body, e1, e2, e3 = decode_body(ctx, req.body)
  if not body then return e1, e2, e3 end
  local input = body.input
  if type(input) == "string" then input = { input } end
  if type(body.model) ~= "string" or type(input) ~= "table" or #input == 0 then
    return fail(ctx, 400, "an embeddings request needs a model and an input", "invalid_request_error")
  end
  for _, t in ipairs(input) do
    if type(t) ~= "string" then
      return fail(ctx, 400, "input must be a string or a list of strings (token arrays are not supported)",
        "invalid_request_error")
    end
  end
  ctx.model = body.model
  local key_fail = self:check_key_budget(ctx)
  if key_fail then return table.unpack(key_fail, 1, key_fail.n) end
  local m = self.upstream:model(body.model, ctx.auth_key)
  local resp, err = m:embed(input, { tag = ctx.tag, case = ctx.case, dimensions = body.dimensions })
  if not resp then return from_error(ctx, err) end
  self:settle_key(ctx, resp)
  ctx.status = 200
  return 200, answer_headers(JSON, resp), O.embeddings(resp, body.model, body.encoding_format)
end

function Proxy:models(_, ctx)
  ctx.status = 200
  local data = {}
  for i, name in ipairs(self.upstream:model_names()) do
    data[i] = { id = name, object = "model", created = 0, owned_by = "llmrun" }
  end
  return 200, JSON, O.encode { object = "list", data = #data > 0 and data or O.EMPTY_ARRAY }
end

-- ---- strategies, budgets per key ---------------------------------------------------------------

function Proxy:strategy_error(hook, err)
  self.counters:count("strategy_errors")
  io.stderr:write("llmrun proxy: strategy error in ", hook, ": ", tostring(err), "\n")
end

-- What on_request returned: an answer (text or {text=}), a rejection
-- ({status=, message=}), or a model/router to use. Returns the handler's
-- results (packed) when the request is answered here.
function Proxy:verdict(req, ctx, v, preq, body)
  if is_model(v) then preq.route = v return nil end
  if type(v) == "string" then v = { text = v } end
  if type(v) ~= "table" then return nil end
  if v.status and v.status >= 400 then
    ctx.rejected = true
    return table.pack(fail(ctx, math.tointeger(v.status) or 400, v.message or v.error or "rejected by the strategy",
      v.type or "invalid_request_error", v.code or "rejected_by_strategy", true))
  end
  if v.text then
    ctx.status, ctx.direct = 200, true
    self.counters:count("direct_answers")
    local resp = { text = v.text, finish_reason = "stop", model = body.model,
                   usage = { prompt_tokens = 0, completion_tokens = 0 } }
    if preq.stream then
      req:start(200, SSE)
      if preq.api == "anthropic" then
        local w = A.stream_writer(body.model)
        req:write(w.start(0) .. w.text(v.text) .. w.finish(resp))
      else
        local id, created = O.new_id(), os.time()
        req:write(O.sse(O.chunk(id, body.model, created, { role = "assistant", content = v.text }))
          .. O.stream_tail(id, body.model, created, resp, false))
      end
      req:finish()
      return { n = 0 }
    end
    if preq.api == "anthropic" then return table.pack(200, JSON, A.message(resp, body.model)) end
    return table.pack(200, JSON, O.encode(O.completion(resp, body.model)))
  end
  return nil
end

-- on_response sees every answer (a copy it may change for a JSON answer:
-- its text then replaces the upstream's).
function Proxy:after_response(resp, ctx)
  self:settle_key(ctx, resp)
  local strat = self.strategy
  if not (strat and strat.on_response) then return resp end
  local before = resp.text
  local ok, out = pcall(strat.on_response, resp, ctx)
  if not ok then
    self:strategy_error("on_response", out)
    return resp
  end
  if type(out) == "table" then resp = out end
  if type(out) == "string" then resp.text = out end
  if resp.text ~= before then resp._body = nil end
  return resp
end

function Proxy:check_key_budget(ctx)
  local cap = self.key_budget
  if not cap or not ctx.key_id then return nil end
  local spent = self.key_spent[ctx.key_id] or 0
  if spent >= cap then
    return table.pack(fail(ctx, 429, ("this proxy key's budget of $%.4f is spent"):format(cap),
      ctx.api == "anthropic" and "rate_limit_error" or "insufficient_quota", "budget_exceeded", true))
  end
end

function Proxy:settle_key(ctx, resp)
  if ctx.key_id and type(resp.cost) == "number" then
    self.key_spent[ctx.key_id] = (self.key_spent[ctx.key_id] or 0) + resp.cost
  end
  self.counters:response(resp)
end

-- ---- the handler ---------------------------------------------------------------------------------

-- method -> path -> handler name
local routes = {
  POST = { ["/v1/chat/completions"] = "chat", ["/chat/completions"] = "chat",
           ["/v1/embeddings"] = "embeddings", ["/embeddings"] = "embeddings", ["/v1/messages"] = "messages" },
  GET = { ["/v1/models"] = "models", ["/models"] = "models" },
}

-- ctx.upstream(name): the gateway's model for a name, for strategies
local ctx_mt = { __index = function(t, k)
  if k == "upstream" then
    local f = function(name) return t.proxy.upstream:model(name, t.auth_key) end
    rawset(t, k, f)
    return f
  end
end }

local sha256 = require("_llm.cache").sha256
local hex = require("_llm.cache").hex

function Proxy:handle(req)
  local path = req.path
  if req.method == "GET" and path == "/llmrun/stats" then
    return 200, JSON, O.encode(self:stats())
  elseif req.method == "GET" and path == "/metrics" then
    return 200, { ["Content-Type"] = "text/plain; version=0.0.4" }, self.counters:prometheus(self.server:stats())
  end
  local h = req.headers
  local ctx = { api = path:find("^/v1/messages") and "anthropic" or "openai", client = req.client,
                tag = h["x-llmrun-tag"], case = h["x-llmrun-case"], proxy = self, t0 = loop.now() }
  setmetatable(ctx, ctx_mt)
  local by_path = routes[req.method]
  local name = by_path and by_path[path]
  ctx.endpoint = name or "other"
  local st, hd, bd
  if not name then
    if path:find("^/v1/") or path:find("^/llmrun") then
      st, hd, bd = fail(ctx, 404, ("no route for %s %s"):format(req.method, path), "invalid_request_error",
        "unknown_url")
    else
      st, hd, bd = fail(ctx, 404, "not found: this is an llmrun gateway (/v1/chat/completions, "
        .. "/v1/embeddings, /v1/models, /v1/messages)", "invalid_request_error", "unknown_url")
    end
  else
    local key = client_key(h)
    if self.proxy_keys then
      if not key or not self.proxy_keys[key] then
        st, hd, bd = fail(ctx, 401, "a valid proxy key is required (Authorization: Bearer KEY or x-api-key)",
          ctx.api == "anthropic" and "authentication_error" or "invalid_request_error", "invalid_api_key")
      else
        ctx.key_id = hex(sha256(key)):sub(1, 12) -- for budgets and stats; never the key
      end
    else
      ctx.auth_key = key -- passed to the upstream, never logged or cached
      if key and self.key_budget then ctx.key_id = hex(sha256(key)):sub(1, 12) end
    end
    if not st then
      st, hd, bd = context.with({ tag = ctx.tag, case = ctx.case, client = ctx.client }, self[name], self, req, ctx)
    end
  end
  self.counters:request(ctx, st or ctx.status)
  return st, hd, bd
end

function Proxy:stats()
  local s = self.counters:snapshot()
  s.server = self.server:stats()
  if self.cache then s.cache = self.cache:stats() end
  return s
end

function Proxy:close()
  self.server:close()
end
Proxy.__close = Proxy.close

--- Starts the gateway: -> proxy | nil, err.
function M.start(opts)
  local self = setmetatable({
    strategy = opts.strategy, cache = opts.cache, counters = pstats.new(),
    key_budget = opts.key_budget, key_spent = {},
  }, Proxy)
  if opts.proxy_keys and #opts.proxy_keys > 0 then
    self.proxy_keys = {}
    for _, k in ipairs(opts.proxy_keys) do self.proxy_keys[k] = true end
  end
  self.upstream = upstream.new { config = opts.config, cache = opts.cache,
                                 passthrough = self.proxy_keys == nil }
  local limits = {}
  for k, v in pairs(opts.limits or {}) do limits[k] = v end
  limits.host, limits.port = opts.host or "127.0.0.1", opts.port or 0
  limits.on_error = function(_, err)
    io.stderr:write("llmrun proxy: handler error: ", tostring(err), "\n")
  end
  local srv, err = serve.listen(limits, function(req) return self:handle(req) end)
  if not srv then return nil, err end
  self.server, self.url, self.port = srv, srv.url, srv.port
  return self
end

return M
