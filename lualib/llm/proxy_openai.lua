-- OpenAI's wire shapes, written by the gateway when it answers from an
-- llmrun response rather than passing the upstream's bytes through: a
-- cache hit, an answer a strategy gave, a router's answer, an upstream
-- that speaks another format (Anthropic). Formats: OpenAI's API
-- reference (chat completion object, chunk object, embeddings, models,
-- errors).
local cjson = require "cjson"

local M = {}

local null = cjson.null

-- lua-cjson writes an empty table as {}; where a client needs [] (a usage
-- chunk's choices, an empty content list) the table holds this marker.
M.EMPTY_ARRAY = "\0llmrun-empty-array\0"
local EMPTY_JSON = '"\\u0000llmrun-empty-array\\u0000"'
local function encode(v)
  local s = cjson.encode(v)
  if s:find(EMPTY_JSON, 1, true) then s = s:gsub('"\\u0000llmrun%-empty%-array\\u0000"', "[]") end
  return s
end
M.encode = encode

local counter = 0
--- A response id: "chatcmpl-llmrun" plus a process-unique number.
function M.new_id(prefix)
  counter = counter + 1
  return ("%s-llmrun%x%06x"):format(prefix or "chatcmpl", os.time(), counter)
end

--- Usage to show the client: a cache hit reports what the original call
-- used (the client sees the same answer it would have got), not zero.
function M.usage_of(resp)
  local u = resp.cached and resp.saved and resp.saved.usage or resp.usage
  if type(u) ~= "table" then return nil end
  local out = {
    prompt_tokens = math.tointeger(u.prompt_tokens) or u.prompt_tokens or 0,
    completion_tokens = math.tointeger(u.completion_tokens) or u.completion_tokens or 0,
  }
  out.total_tokens = out.prompt_tokens + out.completion_tokens
  if (u.cached_tokens or 0) > 0 then
    out.prompt_tokens_details = { cached_tokens = math.tointeger(u.cached_tokens) or u.cached_tokens }
  end
  return out
end

local function message_of(text, tool_calls)
  local msg = { role = "assistant", content = text or null }
  if type(tool_calls) == "table" and #tool_calls > 0 then
    msg.tool_calls = tool_calls
    if text == "" then msg.content = null end
  end
  msg.refusal = null
  return msg
end

--- A chat.completion object (as a Lua table) for resp.
function M.completion(resp, model)
  local choices
  if type(resp.choices) == "table" and #resp.choices > 1 then
    choices = resp.choices
  else
    choices = { {
      index = 0, message = message_of(resp.text or "", resp.tool_calls),
      finish_reason = resp.finish_reason or "stop", logprobs = null,
    } }
  end
  return {
    id = M.new_id(), object = "chat.completion", created = os.time(),
    model = resp.model or model, choices = choices, usage = M.usage_of(resp) or null,
  }
end

local json_string = cjson.encode

-- The part of a completion after "created" for recent answers, by text:
-- {model, finish_reason, usage table, its three counts, text}. A cache hit
-- answered again and again (the same stored answer) writes only its id
-- and time; any difference in what the part is made of makes it again.
local tails = require("llm.memo").new(256, 8 << 20) -- text -> {..., tail}

local function usage_source(resp)
  local u = resp.cached and resp.saved and resp.saved.usage or resp.usage
  return type(u) == "table" and u or nil
end

local function completion_tail(resp, model, text)
  local m, fr, u = resp.model or model, resp.finish_reason or "stop", usage_source(resp)
  local pt, ct, kt
  if u then pt, ct, kt = u.prompt_tokens, u.completion_tokens, u.cached_tokens end
  local t = tails:get(text)
  if t and t[1] == m and t[2] == fr and t[3] == (u ~= nil) and t[4] == pt and t[5] == ct and t[6] == kt then
    return t[7]
  end
  local usage = M.usage_of(resp)
  local tail = ',"model":' .. json_string(m)
    .. ',"choices":[{"index":0,"message":{"role":"assistant","content":' .. json_string(text)
    .. ',"refusal":null},"finish_reason":' .. json_string(fr)
    .. ',"logprobs":null}],"usage":' .. (usage and json_string(usage) or "null") .. "}"
  tails:put(text, { m, fr, u ~= nil, pt, ct, kt, tail }, #tail)
  return tail
end

--- The JSON text of M.completion(resp, model), written directly for the
-- usual answer (one choice, no tool calls): a cache hit's answer is the
-- gateway's hot path, and building the table only to encode it was a
-- tenth of a hit's time. Anything else goes through the table.
function M.completion_json(resp, model)
  local choices, tcs, text = resp.choices, resp.tool_calls, resp.text or ""
  if (type(choices) == "table" and #choices > 1) or (type(tcs) == "table" and #tcs > 0)
     or type(text) ~= "string" then
    return encode(M.completion(resp, model))
  end
  return '{"id":"' .. M.new_id() .. '","object":"chat.completion","created":' .. os.time()
    .. completion_tail(resp, model, text)
end

--- Server-sent events of a stream: one "data: {chunk}\n\n" string.
function M.sse(doc) return "data: " .. encode(doc) .. "\n\n" end
M.DONE = "data: [DONE]\n\n"

--- A chunk object with one choice.
function M.chunk(id, model, created, delta, finish_reason, usage)
  local c = {
    id = id, object = "chat.completion.chunk", created = created, model = model,
    choices = { { index = 0, delta = delta, finish_reason = finish_reason or null, logprobs = null } },
  }
  if usage ~= nil then c.usage = usage end
  return c
end

--- The final chunks of a stream rendered from a complete response: the
-- tool calls (if any) and the finish reason, then the usage chunk when the
-- client asked for it (stream_options.include_usage).
function M.stream_tail(id, model, created, resp, want_usage)
  local out = {}
  if type(resp.tool_calls) == "table" and #resp.tool_calls > 0 then
    local tcs = {}
    for i, tc in ipairs(resp.tool_calls) do
      tcs[i] = { index = i - 1, id = tc.id, type = "function", ["function"] = tc["function"] }
    end
    out[#out + 1] = M.sse(M.chunk(id, model, created, { tool_calls = tcs }))
  end
  out[#out + 1] = M.sse(M.chunk(id, model, created, {}, resp.finish_reason or "stop",
    want_usage and null or nil))
  if want_usage then
    out[#out + 1] = M.sse { id = id, object = "chat.completion.chunk", created = created,
      model = model, choices = M.EMPTY_ARRAY, usage = M.usage_of(resp) or null }
  end
  out[#out + 1] = M.DONE
  return table.concat(out)
end

--- An error body in OpenAI's shape.
function M.error_body(message, etype, code, param)
  return encode { error = { message = message, type = etype or "invalid_request_error",
    param = param or null, code = code or null } } .. "\n"
end

-- ---- embeddings ------------------------------------------------------------------

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
  local out, n = {}, #s
  for i = 1, n, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = (v >> 18) & 63
    local c2 = (v >> 12) & 63
    local c3 = (v >> 6) & 63
    local c4 = v & 63
    out[#out + 1] = b64chars:sub(c1 + 1, c1 + 1) .. b64chars:sub(c2 + 1, c2 + 1)
      .. (b and b64chars:sub(c3 + 1, c3 + 1) or "=") .. (c and b64chars:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end
M.base64 = base64

--- The embeddings list object; base64 packs each vector as little-endian
-- float32, as OpenAI does for encoding_format = "base64".
function M.embeddings(resp, model, encoding_format)
  local data = {}
  for i, v in ipairs(resp.vectors or {}) do
    local emb = v
    if encoding_format == "base64" then
      local parts = {}
      for j, x in ipairs(v) do parts[j] = string.pack("<f", x) end
      emb = base64(table.concat(parts))
    end
    data[i] = { object = "embedding", index = i - 1, embedding = emb }
  end
  local u = resp.cached and resp.saved and resp.saved.usage or resp.usage or {}
  return encode { object = "list", data = data, model = resp.model or model,
    usage = { prompt_tokens = math.tointeger(u.prompt_tokens) or 0,
              total_tokens = math.tointeger(u.total_tokens or u.prompt_tokens) or 0 } }
end

return M
