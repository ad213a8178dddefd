-- The OpenAI wire format, spoken by OpenAI and every OpenAI-compatible
-- server (Ollama's /v1, vLLM, llama.cpp, OpenRouter, Groq...) and by
-- llmrun's own simulator. Pure functions: requests to bytes, bytes to
-- results. Formats: ../shared/RELIABILITY.md §C.2.
local cjson = require "cjson"
local json = require "_llm.json" -- reads what servers send (src/lmod_json.c says why)
local errors = require "llm.errors"

local null = cjson.null
local P = { name = "openai" }

P.DEFAULT_BASE_URL = "https://api.openai.com/v1"

local common = require "llm.providers.common"
local env, nonnull = common.env, common.nonnull

--- Connection settings from the model spec, then the environment, as the
-- official SDKs read it.
-- No key and a remote server: refused rather than sent unauthenticated
-- (a loopback server, e.g. vLLM or llama.cpp, may need none; api_key =
-- false says "send none" anywhere).
function P.configure(spec)
  local base = (spec.base_url or env("OPENAI_BASE_URL") or P.DEFAULT_BASE_URL):gsub("/+$", "")
  local key = spec.api_key
  if key == nil then key = env("OPENAI_API_KEY") end
  if key == nil and not common.is_loopback(base) then
    error(("llm.model: no API key for %s: set OPENAI_API_KEY or api_key = \"...\" "
      .. "(api_key = false sends none)"):format(base), 3)
  end
  return {
    base_url = base,
    api_key = key or nil,
    organization = spec.organization or env("OPENAI_ORG_ID"),
    project = spec.project or env("OPENAI_PROJECT_ID"),
  }
end

--- Request header lines. extra: {Name = value} from the model spec.
function P.headers(cfg, extra)
  local h = { "Content-Type: application/json", "Accept: application/json" }
  if cfg.api_key then h[#h + 1] = "Authorization: Bearer " .. cfg.api_key end
  if cfg.organization then h[#h + 1] = "OpenAI-Organization: " .. cfg.organization end
  if cfg.project then h[#h + 1] = "OpenAI-Project: " .. cfg.project end
  return common.add_headers(h, extra)
end

-- ---- chat -----------------------------------------------------------------------

--- body: the normalized request (messages + parameters), without model.
function P.chat_request(cfg, model, body, stream)
  -- body is the caller's fresh table (Model.normalize made it): add the
  -- wire-only fields in place rather than copying it
  local added_usage = false
  body.model = model
  if stream then
    body.stream = true
    if body.stream_options == nil and cfg.stream_usage ~= false then
      body.stream_options = { include_usage = true }
      added_usage = true
    end
  end
  local text = cjson.encode(body)
  body.model, body.stream = nil, nil
  if added_usage then body.stream_options = nil end
  return { url = cfg.base_url .. "/chat/completions", body = text }
end

local function snippet(s)
  s = tostring(s or ""):gsub("%s+", " ")
  if #s > 200 then s = s:sub(1, 200) .. "..." end
  return s
end

--- OpenAI usage -> llmrun usage. Cached tokens are a subset of the
-- prompt tokens and reasoning tokens a subset of the completion tokens.
function P.usage(u)
  if type(u) ~= "table" then return nil end
  local pd = nonnull(u.prompt_tokens_details) or {}
  local cd = nonnull(u.completion_tokens_details) or {}
  local prompt = nonnull(u.prompt_tokens) or 0
  local completion = nonnull(u.completion_tokens) or 0
  return {
    prompt_tokens = prompt,
    completion_tokens = completion,
    total_tokens = nonnull(u.total_tokens) or (prompt + completion),
    cached_tokens = nonnull(pd.cached_tokens) or 0,
    reasoning_tokens = nonnull(cd.reasoning_tokens) or 0,
  }
end

local function decode(text, what)
  local ok, doc = pcall(json.decode, text)
  if not ok or type(doc) ~= "table" then
    return nil, errors.new("parse", what .. " is not a JSON object: " .. snippet(text))
  end
  return doc
end

function P.parse_chat(text)
  local doc, err = decode(text, "chat response")
  if not doc then return nil, err end
  if doc.error and doc.error ~= null then
    local e = doc.error
    return nil, errors.new("provider", type(e) == "table" and nonnull(e.message) or tostring(e))
  end
  local choices = nonnull(doc.choices)
  local first = type(choices) == "table" and choices[1]
  if type(first) ~= "table" then
    return nil, errors.new("parse", "chat response has no choices: " .. snippet(text))
  end
  local msg = nonnull(first.message) or {}
  local lp = nonnull(first.logprobs)
  return {
    text = nonnull(msg.content) or "",
    -- per-token {token=, logprob=, ...} when the request asked for logprobs
    logprobs = type(lp) == "table" and nonnull(lp.content) or nil,
    tool_calls = nonnull(msg.tool_calls),
    finish_reason = nonnull(first.finish_reason),
    usage = P.usage(nonnull(doc.usage)),
    model = nonnull(doc.model),
    choices = #choices > 1 and choices or nil,
  }
end

-- ---- streaming ---------------------------------------------------------------------

function P.stream_begin()
  return { parts = {}, tool_calls = nil, done = false }
end

local function merge_tool_call(st, tc)
  st.tool_calls = st.tool_calls or {}
  local i = (nonnull(tc.index) or 0) + 1
  local cur = st.tool_calls[i]
  if not cur then
    cur = { id = nonnull(tc.id), type = nonnull(tc.type) or "function",
            ["function"] = { name = "", arguments = "" } }
    st.tool_calls[i] = cur
  end
  local fn = nonnull(tc["function"])
  if fn then
    if nonnull(fn.name) then cur["function"].name = cur["function"].name .. fn.name end
    if nonnull(fn.arguments) then cur["function"].arguments = cur["function"].arguments .. fn.arguments end
  end
end

--- Consumes one SSE event; returns a delta {text=, index=, t=} when it
-- carries text, else nil. Sets st.done at [DONE] and st.error for an
-- in-band error or bad JSON; st.first_t when the first content arrives.
function P.stream_event(st, ev)
  local data = ev.data
  if data:sub(1, 6) == "[DONE]" then
    st.done = true
    return nil
  end
  local doc, err = decode(data, "stream chunk")
  if not doc then
    st.error = err
    return nil
  end
  local e = nonnull(doc.error)
  if e then
    local msg = type(e) == "table" and nonnull(e.message) or (type(e) == "string" and e) or nil
    st.error = errors.new("provider", msg or "An error occurred during streaming", {
      type = type(e) == "table" and nonnull(e.type) or nil,
      code = type(e) == "table" and nonnull(e.code) or nil })
    return nil
  end
  if nonnull(doc.model) then st.model = doc.model end
  if nonnull(doc.usage) then st.usage = P.usage(doc.usage) end
  local choices = nonnull(doc.choices)
  if type(choices) ~= "table" then return nil end -- usage chunk: choices [] / null / missing
  local c = choices[1]
  if type(c) ~= "table" then return nil end
  if nonnull(c.finish_reason) then st.finish_reason = c.finish_reason end
  local delta = nonnull(c.delta) or {}
  local tcs = nonnull(delta.tool_calls)
  if type(tcs) == "table" then
    for _, tc in ipairs(tcs) do merge_tool_call(st, tc) end
    st.first_t = st.first_t or ev.t
  end
  local lp = nonnull(c.logprobs)
  local lpc = type(lp) == "table" and nonnull(lp.content)
  if type(lpc) == "table" and (nonnull(c.index) or 0) == 0 then
    st.logprobs = st.logprobs or {}
    for _, item in ipairs(lpc) do st.logprobs[#st.logprobs + 1] = item end
  end
  local text = nonnull(delta.content)
  if type(text) == "string" and text ~= "" and (nonnull(c.index) or 0) == 0 then
    st.parts[#st.parts + 1] = text
    st.first_t = st.first_t or ev.t
    return { text = text, index = 0, t = ev.t }
  end
  return nil
end

function P.stream_result(st)
  return {
    text = table.concat(st.parts),
    tool_calls = st.tool_calls,
    finish_reason = st.finish_reason,
    usage = st.usage,
    model = st.model,
    logprobs = st.logprobs,
  }
end

-- ---- embeddings -------------------------------------------------------------------------

function P.embed_request(cfg, model, input, opts)
  local b = { model = model, input = input, encoding_format = "float" }
  if opts and opts.dimensions then b.dimensions = opts.dimensions end
  return { url = cfg.base_url .. "/embeddings", body = cjson.encode(b) }
end

function P.parse_embed(text, n)
  local doc, err = decode(text, "embeddings response")
  if not doc then return nil, err end
  local data = nonnull(doc.data)
  if type(data) ~= "table" then
    return nil, errors.new("parse", "embeddings response has no data: " .. snippet(text))
  end
  local vectors = {}
  for i, item in ipairs(data) do
    local idx = (nonnull(item.index) or (i - 1)) + 1
    vectors[idx] = nonnull(item.embedding)
  end
  for i = 1, n do
    if type(vectors[i]) ~= "table" then
      return nil, errors.new("parse", ("embeddings response lacks vector %d"):format(i))
    end
  end
  local u = nonnull(doc.usage) or {}
  return {
    vectors = vectors,
    usage = { prompt_tokens = nonnull(u.prompt_tokens) or 0, total_tokens = nonnull(u.total_tokens) or 0 },
    model = nonnull(doc.model),
  }
end

-- ---- errors -------------------------------------------------------------------------------

--- Fields of an error body, in any of the common shapes: OpenAI
-- {"error":{message,type,param,code}}, Anthropic {"type":"error",
-- "error":{type,message}}, Ollama {"error":"..."}. nil if none.
function P.parse_error(status, body)
  local ok, doc = pcall(json.decode, body or "")
  if not ok or type(doc) ~= "table" then return nil end
  local e = nonnull(doc.error)
  if type(e) == "string" then return { message = e } end
  if type(e) ~= "table" then return nil end
  return {
    message = nonnull(e.message),
    type = nonnull(e.type),
    code = nonnull(e.code),
    param = nonnull(e.param),
  }
end

return P
