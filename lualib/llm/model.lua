-- llm.model(spec) -> a model you can call: m:chat, m:stream, m:embed.
--
-- spec: "name", "provider/name", or a table {name=, provider=, base_url=,
-- api_key=, organization=, project=, timeout=, connect_timeout=,
-- stall_timeout=, max_idle_reuse=, max_retries=, retry_scale=, insecure=,
-- ca_file=, headers={Name=value}, log_text=, defaults={temperature=...,
-- max_tokens=...}, stream_usage=, drop_params=, cache=, limits={rpm=, tpm=,
-- itpm=, otpm=, max_concurrency=, ...} (llm.limits)}. The network
-- options (base URL, headers, timeouts, TLS, retries) become one checked
-- table, m.net (llm.transport), that goes to the HTTP binding as it is.
--
-- What m:chat does, in order (the stages are llm.pipeline's table):
--   request_body (normalize + the provider's parameter rules) ->
--   calls.begin -> calls.before (cache lookup, budget...) ->
--   format.chat_request (the wire bytes) -> Model:send (attempts through
--   llm.transport; a non-2xx reply read by format.http_error; retries by
--   llm.retry) -> format.parse_chat -> calls.finish (usage check, price,
--   budget, cache store, call log, observers).
-- drop_params: what happens to a request parameter the model does not take
-- (llm.model_rules): true drops it, false raises; unset, the rule decides
-- (reasoning models' sampling knobs are dropped with a warning, anything
-- that changes the answer's shape raises).
-- cache: a cache (llm.cache.open{...}, llm.cache.semantic{...}) or true
-- for the default one; see llm.cache.
--
-- Every call is a task-friendly blocking call: it yields while waiting,
-- so many run at once under llm.map. Runtime failures return nil, err
-- (an llm.error); misuse (a bad argument) raises.
local loop = require "_llm.loop"
local providers = require "llm.providers"
local transport = require "llm.transport"
local response = require "llm.response"
local calls = require "llm.calls"
local errors = require "llm.errors"
local untrusted = require "llm.untrusted"
local dryrun = require "llm.dryrun"
local ratelimit_headers = require "llm.ratelimit_headers"
local pipeline = require "llm.pipeline"
local streams = require "llm.streams"
local retry = require "llm.retry"
local common = require "llm.providers.common"

local now = loop.now
-- LLMRUN_PROFILE_STAGES: llm.model's own parts are timed too (nil when off)
local timed, cpu = pipeline.timed, pipeline.cpu

local Model = {}
Model.__index = Model
Model.__name = "llm.model"

-- ---- construction ---------------------------------------------------------

local function parse_name(s)
  local p, rest = s:match("^([%w_%-]+)/(.+)$")
  if p and providers.get(p) then return p, rest end
  return nil, s
end

-- The options of the model itself; the network options (timeouts, TLS,
-- retries...) are llm.transport's OPTIONS, checked there.
local spec_keys = {
  name = "string", provider = "string", base_url = "string", api_key = "string|false",
  organization = "string", project = "string", headers = "table", defaults = "table",
  stream_usage = "boolean", drop_params = "boolean", log_text = "boolean",
  limits = "table", [1] = "string",
}

local function new(spec)
  pipeline.install() -- the stages every call has: prices, the call log
  if type(spec) == "string" then spec = { name = spec } end
  if type(spec) ~= "table" then
    error("bad argument #1 to 'llm.model' (string or table expected, got " .. type(spec) .. ")", 2)
  end
  for k, v in pairs(spec) do
    local want = spec_keys[k]
    if want == nil and k ~= "cache" and not transport.OPTIONS[k] then
      error("llm.model: unknown option '" .. tostring(k) .. "'", 2)
    end
    if want == "string|false" then
      if type(v) ~= "string" and v ~= false then
        error(("llm.model: option '%s' must be a string or false, got %s"):format(k, type(v)), 2)
      end
    elseif want and type(v) ~= want then
      error(("llm.model: option '%s' must be a %s, got %s"):format(tostring(k), want, type(v)), 2)
    end
  end
  if spec.limits ~= nil then require("llm.limits").check_spec(spec.limits, "llm.model", 2) end
  local name = spec.name or spec[1]
  if type(name) ~= "string" or name == "" then
    error("llm.model: a model name is required", 2)
  end
  local dry_run_provider
  if dryrun.enabled() then -- llmrun --dry-run: every model goes to the simulator
    spec, dry_run_provider = dryrun.rewrite(spec, providers)
    name = spec.name
  end
  local pname = spec.provider
  if not pname then
    pname, name = parse_name(name)
    pname = pname or providers.default_for(name)
  end
  local provider = providers.get(pname)
  if not provider then
    error(("llm.model: unknown provider '%s' (known: %s)"):format(pname,
      table.concat(providers.names(), ", ")), 2)
  end
  local cfg = provider.configure(spec, name)
  cfg.stream_usage = spec.stream_usage
  transport.check_base_url(cfg.base_url, spec.base_url and "base_url" or pname, 2)
  -- the simulator speaks anthropic for Claude names, openai otherwise
  local format = provider.format_for and provider.format_for(name) or provider.format
  -- a server that quotes the key back gets it masked (llm.untrusted)
  untrusted.add_secret(cfg.api_key)
  local net_opts = {}
  for k in pairs(transport.OPTIONS) do net_opts[k] = spec[k] end
  net_opts.headers = spec.headers
  local net = transport.net(cfg, net_opts, format, 2)
  if net.insecure then
    io.stderr:write("llmrun: WARNING: TLS certificate checks are off for ", cfg.base_url, "\n")
  end
  return setmetatable({
    name = name,
    provider = pname,
    simulated = provider.simulated == true,
    format = format,
    cfg = cfg,
    net = net,
    headers = spec.headers, -- the extra headers as given (m.net has the lines)
    defaults = spec.defaults or {},
    drop_params = spec.drop_params,
    log_text = spec.log_text, -- false: the call log keeps no prompt or answer text
    limits = spec.limits, -- rate limits of this account and model (llm.limits)
    cache = spec.cache ~= nil and require("llm.cache").resolve(spec.cache) or nil,
    dry_run_provider = dry_run_provider,
  }, Model)
end

--- m:with{...} -> a copy with some settings changed (defaults are merged;
-- a network option makes a new m.net).
function Model:with(changes)
  local copy = setmetatable({}, Model)
  for k, v in pairs(self) do copy[k] = v end
  local net_opts
  for k, v in pairs(changes or {}) do
    if transport.OPTIONS[k] or k == "headers" or k == "cfg" then
      if not net_opts then
        net_opts = {}
        for nk, nv in pairs(self.net.options) do net_opts[nk] = nv end
      end
      if k ~= "cfg" then net_opts[k] = v end
    end
    if k == "defaults" then
      local d = {}
      for dk, dv in pairs(self.defaults) do d[dk] = dv end
      for dk, dv in pairs(v) do d[dk] = dv end
      copy.defaults = d
    elseif k == "cache" then
      copy.cache = require("llm.cache").resolve(v)
    elseif not transport.OPTIONS[k] then
      copy[k] = v
    end
  end
  if net_opts then copy.net = transport.net(copy.cfg, net_opts, copy.format, 2) end
  return copy
end

--- m:with_cache(c) -> a copy that answers from cache c (a cache, true for
-- the default one, or false for none).
function Model:with_cache(c)
  local copy = self:with {}
  copy.cache = require("llm.cache").resolve(c)
  return copy
end

function Model:__tostring()
  return ("model %s (%s)"):format(self.name, self.provider)
end

-- ---- requests ------------------------------------------------------------------

local function copy_message(m, i)
  if type(m) ~= "table" then
    error(("chat: messages[%d] must be a table, got %s"):format(i, type(m)), 4)
  end
  if type(m.role) ~= "string" then
    error(("chat: messages[%d].role must be a string"):format(i), 4)
  end
  return m
end

-- A chat request as the user wrote it -> the body parameters (no model).
local function normalize(req, defaults)
  -- a constructor naming the usual fields sizes the table once (fields
  -- left nil take no room); the wire adds model (and stream) for a moment
  local body = { messages = nil, max_tokens = nil, model = nil, stream = nil }
  for k, v in pairs(defaults) do body[k] = v end
  if type(req) == "string" then
    body.messages = { { role = "user", content = req } }
    return body
  end
  if type(req) ~= "table" then
    error("bad argument #1 to 'chat' (string or table expected, got " .. type(req) .. ")", 3)
  end
  for k, v in pairs(req) do
    if k ~= "system" and k ~= "user" and k ~= "prompt" then body[k] = v end
  end
  if req.messages ~= nil then
    if type(req.messages) ~= "table" then
      error("chat: messages must be a list of {role=, content=} tables", 3)
    end
    local msgs = {}
    for i, m in ipairs(req.messages) do msgs[i] = copy_message(m, i) end
    if req.system then table.insert(msgs, 1, { role = "system", content = req.system }) end
    body.messages = msgs
  else
    local user = req.user or req.prompt
    if not user then
      error("chat: the request needs messages, or a user (or prompt) text", 3)
    end
    local u = { role = "user", content = user }
    body.messages = req.system and { { role = "system", content = req.system }, u } or { u }
  end
  if #body.messages == 0 then error("chat: messages is empty", 3) end
  return body
end
Model.normalize = normalize

--- The body a request sends: normalized, then checked and rewritten by
-- the provider's parameter rules (model_rules; misuse raises). The cache
-- key is made from this, so two requests that send the same bytes share it.
function Model:request_body(req)
  local body = normalize(req, self.defaults)
  -- extra = {...}: fields sent as they are, past every check; the wires
  -- merge them into the body they encode (and the cache key has them)
  local extra = body.extra
  body.extra = nil
  if extra ~= nil and (type(extra) ~= "table" or getmetatable(extra) ~= nil) then
    error("chat: extra must be a table of fields to send as they are, got " .. type(extra), 3)
  end
  -- mock_response: a scripted answer, which only the simulator gives
  local mock = body.mock_response
  body.mock_response = nil
  if mock ~= nil then
    if type(mock) ~= "string" then
      error("chat: mock_response must be a string (the answer to give), got " .. type(mock), 3)
    end
    if not self.simulated then
      error(("chat: mock_response is answered by the simulator only, and model %q goes to provider "
        .. "%s: use a sim/ model (or llmrun --dry-run)"):format(self.name, self.provider), 3)
    end
    local e = {}
    for k, v in pairs(extra or {}) do e[k] = v end
    e.mock_response = mock
    extra = e
  end
  if self.format.prepare then body = self.format.prepare(body, self) end
  if extra ~= nil and next(extra) ~= nil then body.extra = extra end
  return body
end

-- A response from a provider's result plus what llm.model measured;
-- the measured fields win.
local function new_response(parsed, fields)
  for k, v in pairs(parsed) do
    if fields[k] == nil then fields[k] = v end
  end
  return response.new(fields)
end

local function ratelimit_of(headers) return ratelimit_headers.of(headers, loop.wallclock) end

local parse = common.parse_safely

-- A call without options shares this one (never written to).
local NO_OPTS = setmetatable({}, { __newindex = function() error("call options are read-only", 2) end })

local function call_opts(self, opts)
  if opts == nil then return NO_OPTS end
  if type(opts) ~= "table" then
    error("bad argument #2 (table of call options expected, got " .. type(opts) .. ")", 3)
  end
  return opts
end

-- ---- send: the request and its attempts (llm.pipeline's send stage) ----------------

local sleep = loop.sleep

--- m:send(kind, url, body [, opts [, call]]) -> res, retries | nil, err
-- kind "request": res = {status, headers, body, t_*} (2xx); "stream": an
-- open _llm.http stream with a 2xx status. Each attempt goes through
-- llm.transport with the model's network table (a copy only when opts
-- overrides it) and the same Idempotency-Key; a non-2xx reply is read by
-- the provider (format.http_error) and llm.retry decides whether to try
-- again. call.retries is kept up to date, so a call cancelled mid-retry
-- still counts its attempts. Also the gateway's way to send a request.
function Model:send(kind, url, body, opts, call)
  local net = transport.for_call(self.net, opts or NO_OPTS)
  local gone = transport.exhausted(net)
  if gone then return nil, gone end
  -- the send taps (llm.record, llm.replay) may hand back another network
  -- table: record's asks _llm.http for the raw chunks, replay's takes no
  -- time between replayed attempts
  local send, snet = transport.sender(net, url, call)
  if not send then
    snet.retries = 0
    return nil, snet
  end
  net = snet
  local max_retries = net.max_retries or retry.DEFAULT_MAX_RETRIES
  local key_line = transport.idempotency_line()
  local t_send = now()
  for n = 0, max_retries do
    local t_attempt = now()
    if call then call.retries = n end
    local res, err, more = transport.attempt(send, kind, net, url, body, key_line, n)
    if res then
      if timed then timed("send", t_send, now) end
      return res, n
    end
    local retryable, headers = more, nil
    if err == nil then -- `more` is a non-2xx reply: the provider reads it
      local reply = more
      headers = reply.headers
      local http_error = self.format.http_error or common.http_error_of(self.format.parse_error)
      err = http_error(reply)
      retryable = retry.should_retry_status(reply.status, headers)
      transport.log_failure(net, url, t_attempt, err)
      if err.quota_exhausted then
        transport.mark_exhausted(net, err)
        retryable = false
      end
      -- the pacer (llm.limits) hears of an overload at once: a 429 with
      -- retry-after pauses every call queued for the key, not only this one
      local pace = call and call.pace
      local st = reply.status
      if pace and (st == 429 or st == 529 or st == 503) and not err.quota_exhausted then
        pace.lim:rejected(pace, st, headers, err, net.retry_scale or retry.scale)
      end
    end
    err.retries = n
    if not retryable or n == max_retries then return nil, err end
    sleep(retry.delay(n, headers) * (net.retry_scale or retry.scale))
    local pace = call and call.pace
    if pace then pace.lim:wait_pause() end
  end
end

-- The wire request of a chat or stream call. A scripted answer
-- (llm.sim_responder left it in call.sim_extra) joins the body's extra
-- fields for the encoding only: call.body stays the request the caller
-- made, which the cache key, the call log and record/replay read.
local function wire_request(self, call, body, stream)
  local add = call.sim_extra
  if not add then return self.format.chat_request(self.cfg, self.name, body, stream) end
  local extra, e = body.extra, {}
  for k, v in pairs(extra or {}) do e[k] = v end
  for k, v in pairs(add) do e[k] = v end
  body.extra = e
  local ok, r = pcall(self.format.chat_request, self.cfg, self.name, body, stream)
  body.extra = extra
  if not ok then error(r, 0) end
  return r
end

-- ---- chat ---------------------------------------------------------------------------

--- m:chat(req [, opts]) -> response | nil, err
-- opts: timeout, max_retries, tag, case (for the call log).
function Model:chat(req, opts)
  local t = timed and cpu()
  opts = call_opts(self, opts)
  local body = self:request_body(req)
  if timed then timed("request", t) end
  if self.format.must_stream and self.format.must_stream(body) then
    -- e.g. Anthropic refuses long non-streaming requests: stream, collect
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.on_delta = o.on_delta or function() end
    return self:stream(req, o)
  end
  local call = calls.begin(self, "chat", body, opts)
  call.scriptable = true -- its bytes come from wire_request: llm.sim_responder may script it
  local _ <close> = calls.guard(call)
  local early, early_err = calls.before(call)
  if early or early_err then return calls.finish(call, early, early_err) end

  t = timed and cpu()
  local r = wire_request(self, call, body, false)
  if timed then timed("encode", t) end
  local res, retries = self:send("request", r.url, r.body, opts, call)
  if not res then return calls.finish(call, nil, retries) end
  t = timed and cpu()
  local parsed, perr = parse(self.format.parse_chat, res.body, r.info)
  if not parsed then
    perr.retries = retries
    return calls.finish(call, nil, perr)
  end
  -- what llm.model measured, into the provider's fresh result (it wins)
  local latency = (res.t_end - call.t0) * 1000
  local headers = res.headers
  parsed.ttft_ms = latency -- without streaming, the first token comes with the last
  parsed.latency_ms = latency
  parsed.model = parsed.model or self.name
  parsed.provider = self.provider
  parsed.simulated = self.simulated
  parsed.request_id = headers["x-request-id"] or headers["request-id"] or parsed.request_id
  parsed.ratelimit = ratelimit_of(headers) or parsed.ratelimit
  parsed.retries = retries
  parsed.cached = false
  parsed.sim_skill = headers["x-sim-skill"] -- which simulator skill answered
  parsed._body = res.body
  local resp = response.new(parsed)
  if timed then timed("parse", t) end
  return calls.finish(call, resp)
end

-- ---- streaming ------------------------------------------------------------------------

local Stream = {}
Stream.__index = Stream
Stream.__name = "llm.stream"

local function stream_fail(s, err)
  s.failed = err
  -- after the first delta a stream is never retried, but the attempts
  -- that opened it still count
  if type(err) == "table" and err.retries == nil then err.retries = s.retries or 0 end
  if s.http then s.http:close() end
  local partial = s.state and s.format.stream_result(s.state)
  if partial and partial.text ~= "" then
    err.partial_text = partial.text
  end
  s.response = partial and new_response(partial, {
    partial = true, error = err, model = partial.model or s.model.name,
    provider = s.model.provider, simulated = s.model.simulated, cached = false,
    ttft_ms = s.state.first_t and (s.state.first_t - s.call.t0) * 1000 or nil,
    latency_ms = (now() - s.call.t0) * 1000, retries = s.retries,
    request_id = s.request_id, ratelimit = s.ratelimit,
  }) or nil
  calls.finish(s.call, nil, err, s.response)
end

local function stream_complete(s)
  local r = s.format.stream_result(s.state)
  local t_end = s.last_t or now()
  s.http:close()
  s.response = new_response(r, {
    usage_missing = r.usage == nil or nil,
    ttft_ms = s.state.first_t and (s.state.first_t - s.call.t0) * 1000 or nil,
    latency_ms = (t_end - s.call.t0) * 1000,
    model = r.model or s.model.name, provider = s.model.provider,
    simulated = s.model.simulated, request_id = s.request_id,
    ratelimit = s.ratelimit, retries = s.retries, cached = false, sim_skill = s.sim_skill,
  })
  calls.finish(s.call, s.response)
end

--- The next text delta, or nil at the end. Raises the stream's error
-- (an llm.error; partial text in err.partial_text) if it fails.
function Stream:next()
  if self.failed then error(self.failed, 2) end
  if self.replay then
    -- an answer from a cache, replayed as deltas
    local delta = self.replay()
    if delta then return delta end
    self.replay = nil
  end
  if self.response then return nil end
  while true do
    local ev, err = self.http:next()
    if not ev then
      if not err and not self.state.done then
        err = errors.new("transport", "the stream ended before [DONE]: the response is truncated",
          { truncated = true })
      end
      if err and not self.saw_event and err.kind ~= "cancelled" and not err.stalled then
        -- nothing readable came: say what did (status, type, first bytes)
        err.message = ("%s; the server sent %s"):format(tostring(err.message),
          transport.describe_reply(self.http:head()))
      end
      if err then
        stream_fail(self, err)
        error(err, 2)
      end
      stream_complete(self)
      return nil
    end
    self.last_t = ev.t
    self.saw_event = true
    local delta, perr = parse(self.format.stream_event, self.state, ev)
    if perr then self.state.error = perr end
    if self.state.error then
      stream_fail(self, self.state.error)
      error(self.failed, 2)
    end
    if delta then return delta end
  end
end

Stream.__call = function(self) return self:next() end

--- Consumes the rest of the stream; returns the final response, or nil, err.
Stream.result = streams.result

function Stream:close()
  if self.http and not self.response and not self.failed then
    self.http:close()
    stream_fail(self, errors.new("cancelled", "stream closed before its end"))
  end
end
Stream.__close = Stream.close

--- m:stream(req [, opts]) -> stream, usable as `for delta in m:stream(req)`.
-- Breaking out of the loop closes the transfer. With opts.on_delta, the
-- whole stream is consumed here and the final response (or nil, err)
-- is returned instead.
function Model:stream(req, opts)
  opts = call_opts(self, opts)
  local body = self:request_body(req)
  local call = calls.begin(self, "stream", body, opts)
  call.scriptable = true
  local s = setmetatable({ model = self, format = self.format, call = call }, Stream)
  -- cancelled while opening or (on_delta) consuming: close it here; a
  -- stream returned to the caller is closed by its own __close
  local returned = false
  local _ <close> = calls.guard(call, function()
    if returned then return end
    if s.http then s:close() else calls.finish(call, nil,
      errors.new("cancelled", "the call was cancelled before it finished",
        { retries = call.retries or 0 })) end
  end)
  local early, early_err = calls.before(call)
  if early then
    s.response = early
    s.replay = rawget(early, "replay") -- a cache hit: its text comes as deltas
    early.replay = nil
    calls.finish(call, early)
  elseif early_err then
    s.failed = early_err
    calls.finish(call, nil, early_err)
  else
    local r = wire_request(self, call, body, true)
    local h, retries = self:send("stream", r.url, r.body, opts, call)
    if not h then
      s.failed = retries
      calls.finish(call, nil, retries)
    else
      s.http, s.retries = h, retries
      local head = h:head()
      s.request_id = head.headers["x-request-id"] or head.headers["request-id"]
      s.sim_skill = head.headers["x-sim-skill"]
      s.ratelimit = ratelimit_of(head.headers)
      s.state = self.format.stream_begin(r.info)
    end
  end
  returned = opts.on_delta == nil
  return streams.deliver(s, opts.on_delta)
end

-- ---- embeddings -----------------------------------------------------------------------------

--- m:embed(text_or_list [, opts]) -> {vectors=, usage=, latency_ms=, model=} | nil, err
-- opts.dimensions asks for shorter vectors where the model supports it.
function Model:embed(input, opts)
  opts = call_opts(self, opts)
  local list = input
  if type(input) == "string" then list = { input } end
  if type(list) ~= "table" or #list == 0 then
    error("bad argument #1 to 'embed' (string or non-empty list of strings expected)", 2)
  end
  for i, t in ipairs(list) do
    if type(t) ~= "string" then error(("embed: item %d is a %s, not a string"):format(i, type(t)), 2) end
  end
  local call = calls.begin(self, "embed", { input = list, dimensions = opts.dimensions }, opts)
  local _ <close> = calls.guard(call)
  local early, early_err = calls.before(call)
  if early or early_err then return calls.finish(call, early, early_err) end
  -- a cache may know some vectors already (call.known_vectors[i]): ask
  -- only for the others, then put the list back together in order
  local known, ask, where = call.known_vectors, list, nil
  if known then
    ask, where = {}, {}
    for i, t in ipairs(list) do
      if not known[i] then
        ask[#ask + 1] = t
        where[#ask] = i
      end
    end
    -- what goes out, for the send stage (llm.record / llm.replay match it)
    call.send_body = { input = ask, dimensions = opts.dimensions }
  end
  local r = self.format.embed_request(self.cfg, self.name, ask, opts)
  local res, retries = self:send("request", r.url, r.body, opts, call)
  if not res then return calls.finish(call, nil, retries) end
  local parsed, perr = parse(self.format.parse_embed, res.body, #ask)
  if not parsed then return calls.finish(call, nil, perr) end
  if known then
    local vectors = {}
    for i in ipairs(list) do vectors[i] = known[i] end
    for j, v in ipairs(parsed.vectors) do vectors[where[j]] = v end
    parsed.vectors = vectors
  end
  return calls.finish(call, response.new {
    vectors = parsed.vectors,
    usage = parsed.usage,
    latency_ms = (res.t_end - call.t0) * 1000,
    model = parsed.model or self.name,
    provider = self.provider,
    simulated = self.simulated,
    request_id = res.headers["x-request-id"],
    ratelimit = ratelimit_of(res.headers),
    retries = retries,
    cached = false,
  })
end

return { new = new, Model = Model, Stream = Stream }
