-- The OpenAI wire format, spoken by OpenAI and every OpenAI-compatible
-- server (Ollama's /v1, vLLM, llama.cpp, OpenRouter, Groq...) and by
-- llmrun's own simulator. Pure functions: requests to bytes, bytes to
-- results. Formats: ../shared/RELIABILITY.md §C.2.
local cjson = require "cjson"
local json = require "_llm.json" -- reads what servers send (src/lmod_json.c says why)
local errors = require "llm.errors"
local params = require "llm.params"
local rules = require "llm.model_rules"

local null = cjson.null
local EMPTY = setmetatable({}, { __newindex = function() error("read-only") end })
local P = { name = "openai" }

P.DEFAULT_BASE_URL = "https://api.openai.com/v1"

local common = require "llm.providers.common"
local env, nonnull, snippet = common.env, common.nonnull, common.snippet

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

--- Applies the model family's parameter rules (llm.model_rules.openai:
-- reasoning models take max_completion_tokens and no sampling knobs)
-- before the call; model: the llm.model (name, provider, drop_params).
local known_cache = {}
local function known_fields(provider)
  local set = known_cache[provider]
  if not set then
    set = {}
    for _, k in ipairs(rules.openai_fields) do set[k] = true end
    for _, k in ipairs(rules.fields_by_provider[provider] or {}) do set[k] = true end
    known_cache[provider] = set
  end
  return set
end

-- model name -> its family in rules.openai, or false: the patterns are
-- matched once per name, not on every call
local families = {}

-- name -> provider -> {model=, provider=}: the context check_fields names
-- in a warning, made once per model rather than on every call (read only)
local contexts = {}
local function context_of(model)
  local by_provider = contexts[model.name]
  if not by_provider then
    by_provider = {}
    contexts[model.name] = by_provider
  end
  local ctx = by_provider[model.provider]
  if not ctx then
    ctx = { model = model.name, provider = model.provider }
    by_provider[model.provider] = ctx
  end
  return ctx
end

function P.prepare(body, model)
  -- unknown fields (a typo) are sent with a warning: OpenAI-compatible
  -- servers take fields of their own (llm.params says the policy)
  params.check_fields(body, known_fields(model.provider), context_of(model))
  local name = model.name
  local fam = families[name]
  if fam == nil then
    fam = params.family(rules.openai, name) or false
    families[name] = fam
  end
  if not fam then return body end
  return params.apply(fam.params, body, { model = model.name, provider = model.provider,
    family = fam.family, drop_params = model.drop_params })
end

-- base URL -> its chat completions URL: one string per base URL, not a
-- concatenation per call
local chat_urls = {}
local function chat_url(base)
  local url = chat_urls[base]
  if not url then
    url = base .. "/chat/completions"
    chat_urls[base] = url
  end
  return url
end

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
  -- extra = {...}: fields sent as they are, merged in for the encoding only
  local extra, saved = body.extra, nil
  if extra ~= nil then
    body.extra, saved = nil, {}
    for k, v in pairs(extra) do saved[k] = { body[k] }; body[k] = v end
  end
  local text = cjson.encode(body)
  if extra ~= nil then
    for k, old in pairs(saved) do body[k] = old[1] end
    body.extra = extra
  end
  body.model, body.stream = nil, nil
  if added_usage then body.stream_options = nil end
  return { url = chat_url(cfg.base_url), body = text }
end


--- OpenAI usage -> llmrun usage. Cached tokens are a subset of the
-- prompt tokens and reasoning tokens a subset of the completion tokens.
-- prompt_tokens_details.cache_write_tokens (newer models; OpenRouter)
-- become cache_creation_tokens, priced at the cache-write price.
-- (Every call reads a usage and a result: the null tests are written out
-- here, as `x == null`, instead of a nonnull() call per field.)
function P.usage(u)
  if type(u) ~= "table" then return nil end
  local pd, cd = u.prompt_tokens_details, u.completion_tokens_details
  if not pd or pd == null then pd = EMPTY end
  if not cd or cd == null then cd = EMPTY end
  local prompt, completion, total = u.prompt_tokens, u.completion_tokens, u.total_tokens
  local cached, written, reasoning = pd.cached_tokens, pd.cache_write_tokens, cd.reasoning_tokens
  if not prompt or prompt == null then prompt = 0 end
  if not completion or completion == null then completion = 0 end
  if not total or total == null then total = prompt + completion end
  if not cached or cached == null then cached = 0 end
  if written == null then written = nil end
  if not reasoning or reasoning == null then reasoning = 0 end
  return {
    prompt_tokens = prompt,
    completion_tokens = completion,
    total_tokens = total,
    cached_tokens = cached,
    cache_creation_tokens = written,
    reasoning_tokens = reasoning,
  }
end

local function decode(text, what)
  local ok, doc = pcall(json.decode, text)
  if not ok or type(doc) ~= "table" then
    return nil, errors.new("parse", what .. " is not a JSON object: " .. snippet(text))
  end
  return doc
end

-- The message's extras every result carries (README "Responses"):
-- refusal, reasoning text (DeepSeek's reasoning_content; "reasoning" as
-- OpenRouter and Groq name it), citations (url_citation annotations).
local function message_extras(r, msg)
  local refusal, reasoning, ann = msg.refusal, msg.reasoning_content, msg.annotations
  if refusal ~= null then r.refusal = refusal end
  if not reasoning or reasoning == null then reasoning = msg.reasoning end
  if type(reasoning) == "string" then r.reasoning = reasoning end
  if type(ann) == "table" and #ann > 0 then r.citations = ann end
end

--- The reference reader of a chat completion body (text) -> result | nil, err.
-- P.parse_chat reads the usual shape in C (_llm.json.openai_chat, the same
-- rules written out there) and comes here for anything else; a test holds
-- the two to the same results.
function P.parse_chat_lua(text)
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
  local msg = first.message
  if not msg or msg == null then msg = EMPTY end -- a number there: a parse error
  local lp = first.logprobs
  local content, tool_calls, finish = msg.content, msg.tool_calls, first.finish_reason
  local model, id, fingerprint, tier = doc.model, doc.id, doc.system_fingerprint, doc.service_tier
  if tool_calls == null then tool_calls = nil end
  if finish == null then finish = nil end
  if model == null then model = nil end
  if id == null then id = nil end
  if fingerprint == null then fingerprint = nil end
  if tier == null then tier = nil end
  local r = {
    text = type(content) == "string" and content or common.text(content or ""),
    -- per-token {token=, logprob=, ...} when the request asked for logprobs
    logprobs = type(lp) == "table" and nonnull(lp.content) or nil,
    tool_calls = tool_calls,
    finish_reason = finish,
    usage = P.usage(doc.usage),
    model = model,
    id = id,
    system_fingerprint = fingerprint,
    service_tier = tier,
    choices = #choices > 1 and choices or nil,
  }
  message_extras(r, msg)
  return r
end

local openai_chat = json.openai_chat

function P.parse_chat(text)
  local r = openai_chat(text)
  if r then return r end
  return P.parse_chat_lua(text)
end

-- ---- streaming ---------------------------------------------------------------------

function P.stream_begin()
  return { parts = {}, refusal = {}, reasoning = {}, tool_calls = nil, done = false }
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

-- Fields of the chunk envelope the assembled message keeps (last wins).
local ENVELOPE = { "id", "created", "model", "system_fingerprint", "service_tier" }

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
  for _, k in ipairs(ENVELOPE) do
    local v = nonnull(doc[k])
    if v ~= nil and v ~= "" then st[k] = v end
  end
  local u = nonnull(doc.usage)
  if u then
    st.raw_usage = u
    st.usage = P.usage(u)
  end
  local choices = nonnull(doc.choices)
  if type(choices) ~= "table" then return nil end -- usage chunk: choices [] / null / missing
  local c = choices[1]
  if type(c) ~= "table" or (nonnull(c.index) or 0) ~= 0 then return nil end
  if nonnull(c.finish_reason) then st.finish_reason = c.finish_reason end
  local delta = nonnull(c.delta) or {}
  local tcs = nonnull(delta.tool_calls)
  if type(tcs) == "table" then
    for _, tc in ipairs(tcs) do merge_tool_call(st, tc) end
    st.first_t = st.first_t or ev.t
  end
  local lp = nonnull(c.logprobs)
  local lpc = type(lp) == "table" and nonnull(lp.content)
  if type(lpc) == "table" then
    st.logprobs = st.logprobs or {}
    for _, item in ipairs(lpc) do st.logprobs[#st.logprobs + 1] = item end
  end
  local lpr = type(lp) == "table" and nonnull(lp.refusal)
  if type(lpr) == "table" then
    st.refusal_logprobs = st.refusal_logprobs or {}
    for _, item in ipairs(lpr) do st.refusal_logprobs[#st.refusal_logprobs + 1] = item end
  end
  local refusal = nonnull(delta.refusal)
  if type(refusal) == "string" then
    st.refusal[#st.refusal + 1] = refusal
    st.has_refusal = true
  end
  local reasoning = nonnull(delta.reasoning_content) or nonnull(delta.reasoning)
  if type(reasoning) == "string" then st.reasoning[#st.reasoning + 1] = reasoning end
  local ann = nonnull(delta.annotations)
  if type(ann) == "table" then
    st.citations = st.citations or {}
    for _, a in ipairs(ann) do st.citations[#st.citations + 1] = a end
  end
  local text = nonnull(delta.content)
  if type(text) == "string" and text ~= "" then
    st.parts[#st.parts + 1] = text
    st.first_t = st.first_t or ev.t
    return { text = text, index = 0, t = ev.t }
  end
  return nil
end

function P.stream_result(st)
  local text = table.concat(st.parts)
  local r = {
    text = text,
    tool_calls = st.tool_calls,
    finish_reason = st.finish_reason,
    usage = st.usage,
    model = st.model,
    id = st.id,
    system_fingerprint = st.system_fingerprint,
    service_tier = st.service_tier,
    logprobs = st.logprobs,
    refusal = st.has_refusal and table.concat(st.refusal) or nil,
    reasoning = #st.reasoning > 0 and table.concat(st.reasoning) or nil,
    citations = st.citations,
  }
  -- what the same call without streaming would have returned
  local message = { role = "assistant", content = (text ~= "" or not st.has_refusal) and text or null,
                    refusal = r.refusal or null, tool_calls = st.tool_calls,
                    reasoning_content = r.reasoning, annotations = st.citations }
  local logprobs = null
  if st.logprobs or st.refusal_logprobs then
    logprobs = { content = st.logprobs or null, refusal = st.refusal_logprobs or null }
  end
  r.raw = {
    id = st.id, object = "chat.completion", created = st.created, model = st.model,
    system_fingerprint = st.system_fingerprint, service_tier = st.service_tier,
    choices = { { index = 0, message = message, logprobs = logprobs,
                  finish_reason = st.finish_reason or null } },
    usage = st.raw_usage,
  }
  return r
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

--- The llm.error of a non-2xx reply {status, headers, body}: the send
-- stage (llm.model's Model:send) hands the reply here to be read.
P.http_error = common.http_error_of(P.parse_error)

return P
