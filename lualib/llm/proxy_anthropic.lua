-- Anthropic's Messages API on the gateway's client side: a request from
-- an Anthropic client (POST /v1/messages) mapped to llmrun's OpenAI-shaped
-- request when its model's upstream speaks OpenAI (the simulator, OpenAI,
-- any compatible server), and llmrun responses written back as Anthropic
-- messages and stream events. When the upstream is Anthropic itself the
-- gateway passes bytes through instead (proxy.lua) and none of this runs.
-- Formats: Anthropic's Messages API reference and streaming guide.
local cjson = require "cjson"
local O = require "llm.proxy_openai"

local M = {}

local null = cjson.null
local encode = O.encode

local function nonnull(v) if v == null then return nil end return v end

-- ---- requests: Anthropic -> OpenAI shape ------------------------------------------------

local function text_of(blocks)
  if type(blocks) == "string" then return blocks end
  local parts = {}
  for _, b in ipairs(type(blocks) == "table" and blocks or {}) do
    if type(b) == "table" and b.type == "text" then parts[#parts + 1] = b.text end
  end
  return table.concat(parts, "\n")
end

local function image_part(b)
  local src = type(b.source) == "table" and b.source or {}
  local url = src.type == "url" and src.url
    or ("data:%s;base64,%s"):format(tostring(src.media_type or "image/png"), tostring(src.data or ""))
  return { type = "image_url", image_url = { url = url } }
end

-- One Anthropic message -> one or more OpenAI messages: tool results
-- become role "tool" messages, tool uses an assistant's tool_calls.
local function map_message(m, out)
  local content = m.content
  if type(content) ~= "table" then
    out[#out + 1] = { role = m.role, content = content }
    return
  end
  local parts, tool_calls, has_image = {}, nil, false
  for _, b in ipairs(content) do
    if type(b) == "table" then
      if b.type == "text" then
        parts[#parts + 1] = { type = "text", text = b.text }
      elseif b.type == "image" then
        parts[#parts + 1] = image_part(b)
        has_image = true
      elseif b.type == "tool_use" then
        tool_calls = tool_calls or {}
        tool_calls[#tool_calls + 1] = { id = b.id, type = "function",
          ["function"] = { name = b.name, arguments = encode(nonnull(b.input) or {}) } }
      elseif b.type == "tool_result" then
        out[#out + 1] = { role = "tool", tool_call_id = b.tool_use_id, content = text_of(b.content) }
      end
      -- thinking and other block types have no OpenAI form: dropped
    end
  end
  if #parts == 0 and not tool_calls then return end
  local msg = { role = m.role }
  if has_image then
    msg.content = parts
  else
    local texts = {}
    for i, p in ipairs(parts) do texts[i] = p.text end
    msg.content = table.concat(texts, "\n")
  end
  if tool_calls then
    msg.tool_calls = tool_calls
    if msg.content == "" then msg.content = null end
  end
  out[#out + 1] = msg
end

-- Fields with an OpenAI meaning; the rest of Anthropic's (top_k,
-- metadata, thinking, service_tier...) have none and are not sent.
local copied = { max_tokens = true, temperature = true, top_p = true, stream = true }

--- Anthropic request body -> OpenAI-shaped body (model and stream kept).
function M.to_openai(b)
  local out = { model = b.model }
  for k in pairs(copied) do
    if b[k] ~= nil then out[k] = b[k] end
  end
  local msgs = {}
  if b.system ~= nil then msgs[1] = { role = "system", content = text_of(b.system) } end
  for _, m in ipairs(type(b.messages) == "table" and b.messages or {}) do
    if type(m) == "table" then map_message(m, msgs) end
  end
  out.messages = msgs
  if type(b.stop_sequences) == "table" and #b.stop_sequences > 0 then out.stop = b.stop_sequences end
  if type(b.tools) == "table" and #b.tools > 0 then
    local tools = {}
    for i, t in ipairs(b.tools) do
      tools[i] = { type = "function", ["function"] = { name = t.name, description = t.description,
        parameters = t.input_schema } }
    end
    out.tools = tools
  end
  local tc = b.tool_choice
  if type(tc) == "table" then
    if tc.type == "any" then out.tool_choice = "required"
    elseif tc.type == "tool" then out.tool_choice = { type = "function", ["function"] = { name = tc.name } }
    elseif tc.type == "none" then out.tool_choice = "none"
    else out.tool_choice = "auto" end
  end
  return out
end

-- ---- responses: llmrun -> Anthropic ---------------------------------------------------------

local stop_reasons = { stop = "end_turn", length = "max_tokens", tool_calls = "tool_use",
                       content_filter = "refusal" }

local function usage_of(resp)
  local u = resp.cached and resp.saved and resp.saved.usage or resp.usage or {}
  local cached = math.tointeger(u.cached_tokens) or 0
  local prompt = math.tointeger(u.prompt_tokens) or 0
  return {
    input_tokens = math.tointeger(u.input_tokens) or math.max(0, prompt - cached),
    output_tokens = math.tointeger(u.completion_tokens) or 0,
    cache_creation_input_tokens = math.tointeger(u.cache_creation_tokens) or 0,
    cache_read_input_tokens = cached,
  }
end

local function tool_input(tc)
  local ok, v = pcall(cjson.decode, tc["function"] and tc["function"].arguments or "{}")
  if not ok or type(v) ~= "table" then v = {} end
  if next(v) == nil then return cjson.decode("{}") end
  return v
end

local function new_id() return O.new_id("msg") end

local function content_of(resp)
  local content = {}
  if (resp.text or "") ~= "" then content[1] = { type = "text", text = resp.text } end
  for _, tc in ipairs(type(resp.tool_calls) == "table" and resp.tool_calls or {}) do
    content[#content + 1] = { type = "tool_use", id = tc.id or O.new_id("toolu"),
      name = tc["function"] and tc["function"].name, input = tool_input(tc) }
  end
  return content
end

--- An Anthropic message (JSON text) for resp.
function M.message(resp, model)
  local content = content_of(resp)
  return encode {
    id = new_id(), type = "message", role = "assistant", model = resp.model or model,
    content = #content > 0 and content or O.EMPTY_ARRAY,
    stop_reason = stop_reasons[resp.finish_reason] or resp.finish_reason or "end_turn",
    stop_sequence = null, usage = usage_of(resp),
  }
end

local function event(name, doc)
  return "event: " .. name .. "\ndata: " .. encode(doc) .. "\n\n"
end

--- A live stream rendered as Anthropic events: start(model, input_tokens)
-- -> text, text_delta(text) -> text, finish(resp) -> text.
function M.stream_writer(model)
  local w = { id = new_id(), open = false }
  function w.start(input_tokens)
    return event("message_start", { type = "message_start", message = {
      id = w.id, type = "message", role = "assistant", model = model, content = O.EMPTY_ARRAY,
      stop_reason = null, stop_sequence = null,
      usage = { input_tokens = input_tokens or 0, output_tokens = 0 } } })
  end
  function w.text(t)
    local out = ""
    if not w.open then
      w.open = true
      out = event("content_block_start", { type = "content_block_start", index = 0,
        content_block = { type = "text", text = "" } })
    end
    return out .. event("content_block_delta", { type = "content_block_delta", index = 0,
      delta = { type = "text_delta", text = t } })
  end
  function w.finish(resp)
    local out, index = {}, 0
    if w.open then
      out[#out + 1] = event("content_block_stop", { type = "content_block_stop", index = 0 })
      index = 1
    end
    for _, tc in ipairs(type(resp.tool_calls) == "table" and resp.tool_calls or {}) do
      out[#out + 1] = event("content_block_start", { type = "content_block_start", index = index,
        content_block = { type = "tool_use", id = tc.id or O.new_id("toolu"),
          name = tc["function"] and tc["function"].name, input = cjson.decode("{}") } })
      out[#out + 1] = event("content_block_delta", { type = "content_block_delta", index = index,
        delta = { type = "input_json_delta", partial_json = tc["function"] and tc["function"].arguments or "{}" } })
      out[#out + 1] = event("content_block_stop", { type = "content_block_stop", index = index })
      index = index + 1
    end
    local u = usage_of(resp)
    out[#out + 1] = event("message_delta", { type = "message_delta",
      delta = { stop_reason = stop_reasons[resp.finish_reason] or resp.finish_reason or "end_turn",
                stop_sequence = null },
      -- the input counts are known only now (message_start said 0);
      -- recent SDKs take them from here
      usage = { output_tokens = u.output_tokens, input_tokens = u.input_tokens,
                cache_read_input_tokens = u.cache_read_input_tokens,
                cache_creation_input_tokens = u.cache_creation_input_tokens } })
    out[#out + 1] = event("message_stop", { type = "message_stop" })
    return table.concat(out)
  end
  return w
end

--- An error body in Anthropic's shape.
function M.error_body(message, etype)
  return encode { type = "error", error = { type = etype or "invalid_request_error", message = message } } .. "\n"
end

--- An in-stream error event (after the stream started).
function M.error_event(message, etype)
  return event("error", { type = "error", error = { type = etype or "api_error", message = message } })
end

return M
