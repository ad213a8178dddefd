-- The gateway's pass-through calls: the client's request goes upstream as
-- the client sent it (its bytes, when no strategy changed it), and the
-- upstream's answer comes back as the upstream sent it, while the call
-- still passes llmrun's call pipeline (llm.calls: cache lookup, budget,
-- then prices, cache store, call log, metrics) like m:chat / m:stream.
--
-- Why not m:chat: a model call rebuilds the request from a Lua table
-- (lua-cjson writes an empty JSON array as {}, and big integers as
-- floats), and returns a parsed response; a gateway must not change what
-- the client asked or what the upstream said. These functions mirror
-- Model:chat and Model:stream (lualib/llm/model.lua) with the wire body
-- given and the raw answer kept; the pipeline stages are the same calls.
--
--   chat(m, body, wire, opts [, on_answer [, on_hit]]) -> resp (resp._body:
--       the upstream's bytes, resp._headers) | nil, err; on_answer(res), when
--       given, gets a 2xx upstream answer (status, headers, body) before the
--       pipeline's finish stages (prices, cache store, call log) run, so a
--       gateway can answer its client first; on_hit(resp) the same for a
--       cache hit (before its call log row and hit counts)
--   stream(m, body, wire, opts, on_head, on_event [, on_end]) -> resp | nil, err
--       on_head(headers) once the upstream stream has started;
--       on_event(ev, state) for each event as it arrives (state: the stream
--       read so far, this event not yet in it), returning false when the
--       client is gone (the upstream transfer is then closed, the call
--       logged as cancelled); on_end() once the upstream stream has ended
--       whole, before the pipeline's finish stages, so the client's stream
--       can end first. A cache hit returns at once (resp.cached set,
--       nothing emitted): the caller renders it.
-- body: the request table the pipeline sees (the client's body without
-- `model`, as Model.normalize would give it); wire: the bytes to send.
-- opts.pass_headers: {name = value} of the client's request to send along
-- (its API's beta and version headers), replacing the model's own: they go
-- to Model:send as opts.net.headers, the send stage's way to change the
-- model's network table for one request.
local calls = require "llm.calls"
local response = require "llm.response"
local errors = require "llm.errors"
local loop = require "_llm.loop"
local ratelimit_headers = require "llm.ratelimit_headers"

local now = loop.now

-- The upstream's rate-limit headers, for the pacer (llm.limits learns the
-- limits of each upstream key and model from them).
local function ratelimit_of(headers)
  return ratelimit_headers.of(headers, loop.wallclock)
end

local M = {}

-- The options of Model:send: the call's, and the model's header lines
-- with the client's pass_headers in place of those of the same names.
local function send_opts(m, opts)
  local pass = opts.pass_headers
  if not (pass and next(pass)) then return opts end
  local lines = {}
  for _, line in ipairs(m.net.headers) do
    local name = line:match("^([^:]+):")
    if not (name and pass[name:lower()]) then lines[#lines + 1] = line end
  end
  for k, v in pairs(pass) do lines[#lines + 1] = k .. ": " .. v end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.net = { headers = lines }
  return o
end

--- The upstream URL of a chat request for model m.
function M.chat_url(m)
  if m.format.name == "anthropic" then return m.cfg.base_url .. "/v1/messages" end
  return m.cfg.base_url .. "/chat/completions"
end

local parse = require("llm.providers.common").parse_safely

function M.chat(m, body, wire, opts, on_answer, on_hit)
  local call = calls.begin(m, "chat", body, opts)
  local _ <close> = calls.guard(call)
  local early, early_err = calls.before(call)
  if early and on_hit and early.cached then on_hit(early) end
  if early or early_err then return calls.finish(call, early, early_err) end
  local res, retries = m:send("request", M.chat_url(m), wire, send_opts(m, opts), call)
  if not res then return calls.finish(call, nil, retries) end
  if on_answer then on_answer(res) end
  local parsed, perr = parse(m.format.parse_chat, res.body)
  if not parsed then
    perr.retries = retries
    return calls.finish(call, nil, perr)
  end
  local latency = (res.t_end - call.t0) * 1000
  return calls.finish(call, response.new {
    text = parsed.text, tool_calls = parsed.tool_calls, finish_reason = parsed.finish_reason,
    usage = parsed.usage, choices = parsed.choices, logprobs = parsed.logprobs,
    ttft_ms = latency, latency_ms = latency,
    model = parsed.model or m.name, provider = m.provider, simulated = m.simulated,
    request_id = res.headers["x-request-id"] or res.headers["request-id"],
    ratelimit = ratelimit_of(res.headers),
    retries = retries, cached = false,
    _body = res.body, _headers = res.headers,
  })
end

function M.stream(m, body, wire, opts, on_head, on_event, on_end)
  local call = calls.begin(m, "stream", body, opts)
  local h, state, retries, request_id
  -- cancelled mid-stream (the client left): close the upstream, log it
  local _ <close> = calls.guard(call, function()
    if h then h:close() end
    calls.finish(call, nil, errors.new("cancelled", "the client closed the connection"))
  end)
  local early, early_err = calls.before(call)
  if early or early_err then
    if early then early.replay = nil end
    return calls.finish(call, early, early_err)
  end
  h, retries = m:send("stream", M.chat_url(m), wire, send_opts(m, opts), call)
  if not h then return calls.finish(call, nil, retries) end
  local head = h:head()
  request_id = head.headers["x-request-id"] or head.headers["request-id"]
  local ratelimit = ratelimit_of(head.headers)
  state = m.format.stream_begin()
  on_head(head.headers)
  local last_t
  local function fail(err)
    h:close()
    local partial = m.format.stream_result(state)
    if partial and partial.text ~= "" then err.partial_text = partial.text end
    local presp = partial and response.new {
      text = partial.text, finish_reason = partial.finish_reason, usage = partial.usage,
      partial = true, error = err, model = partial.model or m.name, provider = m.provider,
      simulated = m.simulated, cached = false, retries = retries,
      ttft_ms = state.first_t and (state.first_t - call.t0) * 1000 or nil,
      latency_ms = (now() - call.t0) * 1000,
    } or nil
    return calls.finish(call, nil, err, presp)
  end
  while true do
    local ev, err = h:next()
    if not ev then
      if not err and not state.done then
        err = errors.new("transport", "the stream ended before its end marker: the response is truncated",
          { truncated = true })
      end
      if err then return fail(err) end
      break
    end
    last_t = ev.t
    -- the client first: reading the event can wait the few microseconds
    if on_event(ev, state) == false then
      h:close()
      h = nil
      return calls.finish(call, nil, errors.new("cancelled", "the client closed the connection"))
    end
    local _, perr = parse(m.format.stream_event, state, ev)
    if perr then state.error = perr end
    if state.error then return fail(state.error) end
  end
  h:close()
  if on_end then on_end() end
  local r = m.format.stream_result(state)
  return calls.finish(call, response.new {
    text = r.text, tool_calls = r.tool_calls, finish_reason = r.finish_reason,
    usage = r.usage, usage_missing = r.usage == nil or nil, logprobs = r.logprobs,
    ttft_ms = state.first_t and (state.first_t - call.t0) * 1000 or nil,
    latency_ms = ((last_t or now()) - call.t0) * 1000,
    model = r.model or m.name, provider = m.provider, simulated = m.simulated,
    request_id = request_id, ratelimit = ratelimit, retries = retries, cached = false,
  })
end

return M
