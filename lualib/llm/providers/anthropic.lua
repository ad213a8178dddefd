-- Anthropic's native Messages API (POST /v1/messages), mapped to and from
-- llmrun's OpenAI-shaped requests and responses. Formats: Anthropic's API
-- reference and streaming guide (../shared/RELIABILITY.md §C.2):
--   * headers x-api-key and anthropic-version: 2023-06-01;
--   * system messages go to the top-level `system`; `stop` becomes
--     `stop_sequences`; max_tokens is required (llmrun defaults it to 4096);
--   * usage: input_tokens excludes the cache counts, which come as
--     cache_creation_input_tokens and cache_read_input_tokens;
--   * streams: message_start, content_block_start/delta/stop,
--     message_delta (usage there is cumulative: keep the last, never sum),
--     message_stop; ping and unknown events are ignored; `error` events
--     (e.g. overloaded_error) end the stream with the provider's message.
local cjson = require "cjson"
local json = require "_llm.json" -- reads what servers send (src/lmod_json.c says why)
local errors = require "llm.errors"

local null = cjson.null
local P = { name = "anthropic" }

P.DEFAULT_BASE_URL = "https://api.anthropic.com"
P.VERSION = "2023-06-01"
P.DEFAULT_MAX_TOKENS = 4096
-- The SDKs refuse non-streaming requests that may take over 10 minutes:
-- 3600 s * max_tokens / 128000 > 600 s, i.e. max_tokens > 21,333.
P.NONSTREAMING_MAX_TOKENS = 21333

local common = require "llm.providers.common"
local env, nonnull = common.env, common.nonnull

function P.configure(spec)
  local base = spec.base_url or env("ANTHROPIC_BASE_URL") or P.DEFAULT_BASE_URL
  return {
    base_url = (base:gsub("/+$", ""):gsub("/v1$", "")),
    api_key = spec.api_key or env("ANTHROPIC_API_KEY"),
  }
end

function P.headers(cfg, extra)
  local h = { "Content-Type: application/json", "Accept: application/json",
              "anthropic-version: " .. P.VERSION }
  if cfg.api_key then h[#h + 1] = "x-api-key: " .. cfg.api_key end
  return common.add_headers(h, extra)
end

-- ---- requests ------------------------------------------------------------------

local function text_of(content)
  if type(content) == "string" then return content end
  if type(content) == "table" then
    local parts = {}
    for _, block in ipairs(content) do
      if type(block) == "table" and block.type == "text" then parts[#parts + 1] = block.text end
    end
    return table.concat(parts)
  end
  return ""
end

--- OpenAI-shaped body -> Anthropic body (without model and stream).
function P.body(body)
  local b, system = {}, {}
  for k, v in pairs(body) do
    if k ~= "messages" and k ~= "stop" and k ~= "max_completion_tokens" and k ~= "stream_options" then
      b[k] = v
    end
  end
  local msgs = {}
  for _, m in ipairs(body.messages) do
    if m.role == "system" or m.role == "developer" then
      system[#system + 1] = text_of(m.content)
    else
      msgs[#msgs + 1] = { role = m.role, content = m.content }
    end
  end
  b.messages = msgs
  if #system > 0 then b.system = table.concat(system, "\n\n") end
  if body.stop then
    b.stop_sequences = type(body.stop) == "string" and { body.stop } or body.stop
  end
  b.max_tokens = body.max_tokens or body.max_completion_tokens or P.DEFAULT_MAX_TOKENS
  return b
end

function P.chat_request(cfg, model, body, stream)
  local b = P.body(body)
  b.model = model
  if stream then b.stream = true end
  return { url = cfg.base_url .. "/v1/messages", body = cjson.encode(b) }
end

--- Non-streaming requests above the SDK guard must stream instead.
function P.must_stream(body)
  local n = body.max_tokens or body.max_completion_tokens or P.DEFAULT_MAX_TOKENS
  return n > P.NONSTREAMING_MAX_TOKENS
end

-- ---- responses ----------------------------------------------------------------------

local finish_reasons = {
  end_turn = "stop", stop_sequence = "stop", max_tokens = "length", tool_use = "tool_calls",
  pause_turn = "stop", refusal = "content_filter",
}

--- Anthropic usage -> llmrun usage. prompt_tokens counts every input
-- token (fresh + cache write + cache read), like OpenAI's, and the
-- Anthropic fields are kept for the Anthropic cost rule.
function P.usage(u)
  if type(u) ~= "table" then return nil end
  local input = nonnull(u.input_tokens) or 0
  local write = nonnull(u.cache_creation_input_tokens) or 0
  local read = nonnull(u.cache_read_input_tokens) or 0
  local output = nonnull(u.output_tokens) or 0
  return {
    prompt_tokens = input + write + read,
    completion_tokens = output,
    total_tokens = input + write + read + output,
    cached_tokens = read,
    cache_creation_tokens = write,
    input_tokens = input,
    reasoning_tokens = 0,
  }
end

local function snippet(s)
  s = tostring(s or ""):gsub("%s+", " ")
  if #s > 200 then s = s:sub(1, 200) .. "..." end
  return s
end

function P.parse_chat(text)
  local ok, doc = pcall(json.decode, text)
  if not ok or type(doc) ~= "table" then
    return nil, errors.new("parse", "messages response is not a JSON object: " .. snippet(text))
  end
  if doc.type == "error" then
    local e = nonnull(doc.error) or {}
    return nil, errors.new("provider", nonnull(e.message) or "error", { type = nonnull(e.type) })
  end
  local content = nonnull(doc.content)
  if type(content) ~= "table" then
    return nil, errors.new("parse", "messages response has no content: " .. snippet(text))
  end
  local parts, tools = {}, nil
  for _, block in ipairs(content) do
    if block.type == "text" then
      parts[#parts + 1] = block.text
    elseif block.type == "tool_use" then
      tools = tools or {}
      tools[#tools + 1] = { id = block.id, type = "function",
        ["function"] = { name = block.name, arguments = cjson.encode(block.input or {}) } }
    end
  end
  local stop = nonnull(doc.stop_reason)
  return {
    text = table.concat(parts),
    tool_calls = tools,
    finish_reason = finish_reasons[stop] or stop,
    usage = P.usage(nonnull(doc.usage)),
    model = nonnull(doc.model),
  }
end

-- ---- streaming ------------------------------------------------------------------------

function P.stream_begin()
  return { parts = {}, done = false, usage_fields = {} }
end

-- message_start carries the input usage; message_delta the cumulative
-- output usage. Fields seen later replace earlier ones.
local function merge_usage(st, u)
  if type(u) ~= "table" then return end
  for k, v in pairs(u) do
    if v ~= null and type(v) == "number" then st.usage_fields[k] = v end
  end
  st.usage = P.usage(st.usage_fields)
end

function P.stream_event(st, ev)
  local ok, doc = pcall(json.decode, ev.data)
  if not ok or type(doc) ~= "table" then
    st.error = errors.new("parse", "stream event is not JSON: " .. snippet(ev.data))
    return nil
  end
  local kind = doc.type or ev.type
  if kind == "message_start" then
    local m = nonnull(doc.message) or {}
    st.model = nonnull(m.model)
    merge_usage(st, nonnull(m.usage))
  elseif kind == "content_block_start" then
    local b = nonnull(doc.content_block) or {}
    if b.type == "tool_use" then
      st.tool_calls = st.tool_calls or {}
      st.tool_calls[(doc.index or 0) + 1] = { id = b.id, type = "function",
        ["function"] = { name = b.name, arguments = "" } }
      st.first_t = st.first_t or ev.t
    end
  elseif kind == "content_block_delta" then
    local d = nonnull(doc.delta) or {}
    if d.type == "text_delta" and type(d.text) == "string" and d.text ~= "" then
      st.parts[#st.parts + 1] = d.text
      st.first_t = st.first_t or ev.t
      return { text = d.text, index = 0, t = ev.t }
    elseif d.type == "input_json_delta" and st.tool_calls then
      local tc = st.tool_calls[(doc.index or 0) + 1]
      if tc then tc["function"].arguments = tc["function"].arguments .. (d.partial_json or "") end
    end
  elseif kind == "message_delta" then
    local d = nonnull(doc.delta) or {}
    local stop = nonnull(d.stop_reason)
    if stop then st.finish_reason = finish_reasons[stop] or stop end
    merge_usage(st, nonnull(doc.usage))
  elseif kind == "message_stop" then
    st.done = true
  elseif kind == "error" then
    local e = nonnull(doc.error) or {}
    st.error = errors.new("provider", nonnull(e.message) or "error in stream",
      { type = nonnull(e.type) })
  end
  -- ping and event types added later are ignored, as the SDKs do
  return nil
end

function P.stream_result(st)
  return {
    text = table.concat(st.parts), tool_calls = st.tool_calls,
    finish_reason = st.finish_reason, usage = st.usage, model = st.model,
  }
end

function P.embed_request()
  error("the anthropic provider has no embeddings endpoint; use an OpenAI-compatible model", 3)
end

-- Same shapes as OpenAI's parser knows ({"type":"error","error":{...}}).
P.parse_error = require("llm.providers.openai").parse_error

return P
