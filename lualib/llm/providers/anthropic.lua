-- Anthropic's native Messages API (POST /v1/messages): llmrun's
-- OpenAI-shaped requests go out through llm.providers.anthropic_request;
-- this file reads what comes back. Formats: Anthropic's API reference and
-- streaming guide (../shared/RELIABILITY.md §C.2), checked against the
-- real recordings in tests/fixtures/providers:
--   * headers x-api-key and anthropic-version: 2023-06-01;
--   * usage: input_tokens excludes the cache counts (cache_creation_input_tokens,
--     cache_read_input_tokens); cache_creation.ephemeral_1h_input_tokens is
--     the 1-hour part of the writes; output_tokens_details.thinking_tokens
--     the thinking part of the output; server_tool_use.web_search_requests
--     the searches billed per request;
--   * content blocks: text (with citations), thinking, redacted_thinking,
--     tool_use, server_tool_use and *_tool_result blocks of server tools;
--   * streams: message_start, content_block_start/delta/stop (text_delta,
--     input_json_delta, thinking_delta, signature_delta, citations_delta),
--     message_delta (usage there is cumulative: keep the last, never sum;
--     fields it leaves out keep message_start's), message_stop; ping and
--     unknown events are ignored; `error` events (e.g. overloaded_error)
--     end the stream with the provider's message.
local cjson = require "cjson"
local json = require "_llm.json" -- reads what servers send (src/lmod_json.c says why)
local errors = require "llm.errors"
local json_raw = require "llm.json_raw"
local request = require "llm.providers.anthropic_request"

local null = cjson.null
local P = { name = "anthropic" }

P.DEFAULT_BASE_URL = "https://api.anthropic.com"
P.VERSION = "2023-06-01"
P.DEFAULT_MAX_TOKENS = request.DEFAULT_MAX_TOKENS
-- The SDKs refuse non-streaming requests that may take over 10 minutes:
-- 3600 s * max_tokens / 128000 > 600 s, i.e. max_tokens > 21,333.
P.NONSTREAMING_MAX_TOKENS = 21333

local common = require "llm.providers.common"
local env, nonnull, snippet = common.env, common.nonnull, common.snippet

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

--- Checks and maps an OpenAI-shaped body before the call (misuse raises):
-- model: the llm.model (name, provider, drop_params).
function P.prepare(body, model)
  return request.prepare(body, { model = model.name, provider = model.provider,
                                 drop_params = model.drop_params })
end

function P.chat_request(cfg, model, body, stream)
  local text, info = request.encode(body, model, stream)
  return { url = cfg.base_url .. "/v1/messages", body = text, info = info }
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

local function count(v)
  v = nonnull(v)
  return type(v) == "number" and v or 0
end

--- Anthropic usage -> llmrun usage. prompt_tokens counts every input
-- token (fresh + cache write + cache read), like OpenAI's, and the
-- Anthropic fields are kept for the Anthropic cost rule.
function P.usage(u)
  if type(u) ~= "table" then return nil end
  local input = count(u.input_tokens)
  local write = count(u.cache_creation_input_tokens)
  local read = count(u.cache_read_input_tokens)
  local output = count(u.output_tokens)
  local cc = nonnull(u.cache_creation)
  local od = nonnull(u.output_tokens_details)
  local stu = nonnull(u.server_tool_use)
  return {
    prompt_tokens = input + write + read,
    completion_tokens = output,
    total_tokens = input + write + read + output,
    cached_tokens = read,
    cache_creation_tokens = write,
    cache_creation_1h_tokens = type(cc) == "table" and count(cc.ephemeral_1h_input_tokens) or 0,
    input_tokens = input,
    reasoning_tokens = type(od) == "table" and count(od.thinking_tokens) or 0,
    web_search_requests = type(stu) == "table" and nonnull(stu.web_search_requests) or nil,
  }
end


-- What every result carries beyond text and tool calls, from the message
-- (parsed) or the stream's assembled message.
local function finish_result(r, msg, info)
  local stop = nonnull(msg.stop_reason)
  r.finish_reason = finish_reasons[stop] or stop
  r.stop_sequence = nonnull(msg.stop_sequence)
  r.stop_details = nonnull(msg.stop_details)
  r.usage = P.usage(nonnull(msg.usage))
  r.model = nonnull(msg.model)
  r.id = nonnull(msg.id)
  if stop == "refusal" then
    local d = r.stop_details
    r.refusal = (type(d) == "table" and nonnull(d.explanation)) or r.text
  end
  if info and info.json_tool and r.json_done then
    -- the forced tool of a response_format: its input is the answer
    r.finish_reason = (stop == "tool_use") and "stop" or r.finish_reason
  end
  r.json_done = nil
  return r
end

-- Content blocks -> result fields. raw_input(i) gives the JSON text of
-- block i's input as the provider sent it.
local function read_blocks(content, info, raw_input)
  local r = { text = "" }
  local parts, reasoning, citations, tools = {}, {}, nil, nil
  for i, block in ipairs(content) do
    local t = block.type
    if t == "text" then
      parts[#parts + 1] = block.text
      local c = nonnull(block.citations)
      if type(c) == "table" then
        citations = citations or {}
        for _, x in ipairs(c) do citations[#citations + 1] = x end
      end
    elseif t == "thinking" then
      reasoning[#reasoning + 1] = nonnull(block.thinking) or ""
    elseif t == "tool_use" then
      local args = raw_input(i, block)
      if info and info.json_tool and block.name == info.json_tool then
        parts[#parts + 1] = args
        r.json_done = true
      else
        tools = tools or {}
        tools[#tools + 1] = { id = block.id, type = "function",
          ["function"] = { name = block.name, arguments = args } }
      end
    end
  end
  r.text = table.concat(parts)
  r.tool_calls = tools
  r.reasoning = #reasoning > 0 and table.concat(reasoning) or nil
  r.citations = citations
  return r
end

function P.parse_chat(text, info)
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
  -- tool arguments: the input's text from the body itself, byte for byte
  local function raw_input(i, block)
    return json_raw.at(text, { "content", i, "input" }) or cjson.encode(nonnull(block.input) or {})
  end
  return finish_result(read_blocks(content, info, raw_input), doc, info)
end

-- ---- streaming ------------------------------------------------------------------------

function P.stream_begin(info)
  return { info = info, done = false, blocks = {}, message = {}, usage_fields = {} }
end

-- message_start carries the input usage; message_delta the cumulative
-- usage. Fields seen later replace earlier ones; nested tables too, and a
-- delta that leaves one out keeps the earlier one.
local function merge_usage(st, u)
  if type(u) ~= "table" then return end
  for k, v in pairs(u) do
    if v ~= null then st.usage_fields[k] = v end
  end
end

local function block_of(st, doc)
  return st.blocks[(nonnull(doc.index) or 0) + 1]
end

-- A content block being streamed: its start event's block plus the
-- pieces of its deltas; done() turns it into the block a non-streamed
-- message would have had.
local function new_block(st, doc, ev)
  local b = nonnull(doc.content_block) or {}
  local blk = { start = b, type = b.type, parts = {}, citations = nil }
  if b.type == "tool_use" or b.type == "server_tool_use" then
    -- the input given at the start ({} in practice); deltas replace it
    blk.start_input = json_raw.at(ev.data, { "content_block", "input" }) or "{}"
  end
  local i = (nonnull(doc.index) or 0) + 1
  st.blocks[i] = blk
  st.order = st.order or {}
  st.order[#st.order + 1] = i
  return blk
end

local function block_input(blk)
  local s = table.concat(blk.parts)
  if s:match("^%s*$") then return blk.start_input end -- no arguments: "{}", as OpenAI sends
  return s
end

function P.stream_event(st, ev)
  local ok, doc = pcall(json.decode, ev.data)
  if not ok or type(doc) ~= "table" then
    st.error = errors.new("parse", "stream event is not JSON: " .. snippet(ev.data))
    return nil
  end
  local kind = doc.type or ev.type
  if kind == "content_block_delta" then
    local d = nonnull(doc.delta) or {}
    local blk = block_of(st, doc)
    if not blk then -- a delta without its start: keep its text anyway
      blk = new_block(st, { index = doc.index, content_block = { type = "text", text = "" } }, ev)
    end
    local dt = d.type
    if dt == "text_delta" and type(d.text) == "string" then
      blk.parts[#blk.parts + 1] = d.text
      if d.text ~= "" then
        st.first_t = st.first_t or ev.t
        return { text = d.text, index = 0, t = ev.t }
      end
    elseif dt == "input_json_delta" then
      local piece = nonnull(d.partial_json) or ""
      blk.parts[#blk.parts + 1] = piece
      if st.info and st.info.json_tool and blk.start.name == st.info.json_tool and piece ~= "" then
        st.first_t = st.first_t or ev.t
        return { text = piece, index = 0, t = ev.t }
      end
    elseif dt == "thinking_delta" then
      blk.parts[#blk.parts + 1] = nonnull(d.thinking) or ""
    elseif dt == "signature_delta" then
      blk.signature = (blk.signature or "") .. (nonnull(d.signature) or "")
    elseif dt == "citations_delta" then
      blk.citations = blk.citations or {}
      blk.citations[#blk.citations + 1] = nonnull(d.citation)
    end
  elseif kind == "content_block_start" then
    local blk = new_block(st, doc, ev)
    if blk.type == "tool_use" then st.first_t = st.first_t or ev.t end
  elseif kind == "message_start" then
    local m = nonnull(doc.message) or {}
    for k, v in pairs(m) do
      if k ~= "usage" and k ~= "content" then st.message[k] = v end
    end
    merge_usage(st, nonnull(m.usage))
  elseif kind == "message_delta" then
    local d = nonnull(doc.delta) or {}
    for k, v in pairs(d) do st.message[k] = v end
    merge_usage(st, nonnull(doc.usage))
  elseif kind == "message_stop" then
    st.done = true
  elseif kind == "error" then
    local e = nonnull(doc.error) or {}
    st.error = errors.new("provider", nonnull(e.message) or "error in stream",
      { type = nonnull(e.type), request_id = nonnull(doc.request_id) })
  end
  -- ping, content_block_stop and event types added later need nothing
  return nil
end

-- The streamed blocks as the non-streamed message's content.
local function assembled_content(st)
  local content = {}
  for _, i in ipairs(st.order or {}) do
    local blk = st.blocks[i]
    local b = {}
    for k, v in pairs(blk.start) do b[k] = v end
    if blk.type == "text" then
      b.text = table.concat(blk.parts)
      if blk.citations then b.citations = blk.citations end
    elseif blk.type == "thinking" then
      b.thinking = table.concat(blk.parts)
      b.signature = blk.signature or nonnull(b.signature)
    elseif blk.start_input then
      blk.input_text = block_input(blk)
      local ok, v = pcall(json.decode, blk.input_text)
      b.input = ok and v or blk.input_text
    end
    content[#content + 1] = b
  end
  return content
end

function P.stream_result(st)
  local msg = {}
  for k, v in pairs(st.message) do msg[k] = v end
  msg.content = assembled_content(st)
  local usage = {}
  for k, v in pairs(st.usage_fields) do usage[k] = v end
  msg.usage = next(usage) and usage or nil
  local blocks_by_pos = {}
  for pos, i in ipairs(st.order or {}) do blocks_by_pos[pos] = st.blocks[i] end
  local r = read_blocks(msg.content, st.info, function(pos) return blocks_by_pos[pos].input_text end)
  r = finish_result(r, msg, st.info)
  r.raw = msg
  return r
end

function P.embed_request()
  error("the anthropic provider has no embeddings endpoint; use an OpenAI-compatible model", 3)
end

-- Same shapes as OpenAI's parser knows ({"type":"error","error":{...}}).
P.parse_error = require("llm.providers.openai").parse_error

--- The llm.error of a non-2xx reply (see the openai format).
P.http_error = common.http_error_of(P.parse_error)

return P
