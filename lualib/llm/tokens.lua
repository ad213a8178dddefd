-- llm.tokens: exact token counts, tiktoken-compatible (C engine: src/bpe/bpe.c
-- through _llm.tok), plus the policy around them: which encoding a model
-- uses, chat-message overheads, truncation.
--
--   llm.tokens.count("some text", "gpt-4o")          --> 2, false
--   llm.tokens.encode(text, "cl100k_base")            --> { ids }
--   llm.tokens.chat(messages, "gpt-4o", { tools = tools })
--
-- The second argument everywhere is a model name or an encoding name
-- ("o200k_base", "cl100k_base", "p50k_base", "p50k_edit", "r50k_base",
-- "gpt2"); nil means o200k_base. A model tiktoken does not know gets
-- o200k_base too, with a one-time warning on stderr, and the functions
-- return true as their extra `estimate` result. Special-token text such
-- as "<|endoftext|>" is ordinary text unless opts.special is true.
local tok = require "_llm.tok"

local M = {}

M.default_encoding = "o200k_base"

local is_encoding = {}
for _, name in ipairs(tok.encodings) do is_encoding[name] = true end

-- tiktoken/model.py (openai/tiktoken main, read 2026-10; RELIABILITY.md
-- C.4): exact names first, then prefixes. "gpt-oss-" models use
-- o200k_harmony, which is o200k_base plus special tokens: the same counts
-- for ordinary text.
local model_encoding = {
  ["o1"] = "o200k_base", ["o3"] = "o200k_base", ["o4-mini"] = "o200k_base",
  ["gpt-5"] = "o200k_base", ["gpt-4.1"] = "o200k_base", ["gpt-4o"] = "o200k_base",
  ["gpt-4o-mini"] = "o200k_base", ["gpt-4.1-mini"] = "o200k_base",
  ["gpt-4.1-nano"] = "o200k_base", ["gpt-oss-120b"] = "o200k_base",
  ["gpt-4"] = "cl100k_base", ["gpt-3.5-turbo"] = "cl100k_base", ["gpt-3.5"] = "cl100k_base",
  ["gpt-35-turbo"] = "cl100k_base", ["davinci-002"] = "cl100k_base",
  ["babbage-002"] = "cl100k_base", ["text-embedding-ada-002"] = "cl100k_base",
  ["text-embedding-3-small"] = "cl100k_base", ["text-embedding-3-large"] = "cl100k_base",
  ["text-davinci-003"] = "p50k_base", ["text-davinci-002"] = "p50k_base",
  ["text-davinci-001"] = "r50k_base", ["text-curie-001"] = "r50k_base",
  ["text-babbage-001"] = "r50k_base", ["text-ada-001"] = "r50k_base",
  ["davinci"] = "r50k_base", ["curie"] = "r50k_base", ["babbage"] = "r50k_base",
  ["ada"] = "r50k_base", ["code-davinci-002"] = "p50k_base", ["code-davinci-001"] = "p50k_base",
  ["code-cushman-002"] = "p50k_base", ["code-cushman-001"] = "p50k_base",
  ["davinci-codex"] = "p50k_base", ["cushman-codex"] = "p50k_base",
  ["text-davinci-edit-001"] = "p50k_edit", ["code-davinci-edit-001"] = "p50k_edit",
  ["text-similarity-davinci-001"] = "r50k_base", ["text-similarity-curie-001"] = "r50k_base",
  ["text-similarity-babbage-001"] = "r50k_base", ["text-similarity-ada-001"] = "r50k_base",
  ["text-search-davinci-doc-001"] = "r50k_base", ["text-search-curie-doc-001"] = "r50k_base",
  ["text-search-babbage-doc-001"] = "r50k_base", ["text-search-ada-doc-001"] = "r50k_base",
  ["code-search-babbage-code-001"] = "r50k_base", ["code-search-ada-code-001"] = "r50k_base",
  ["gpt2"] = "gpt2", ["gpt-2"] = "gpt2",
}

-- Checked in this order, so "ft:gpt-4o" wins over "ft:gpt-4".
local model_prefixes = {
  { "o1-", "o200k_base" }, { "o3-", "o200k_base" }, { "o4-mini-", "o200k_base" },
  { "gpt-5", "o200k_base" }, { "gpt-4.5-", "o200k_base" }, { "gpt-4.1-", "o200k_base" },
  { "chatgpt-4o-", "o200k_base" }, { "gpt-4o-", "o200k_base" }, { "gpt-oss-", "o200k_base" },
  { "ft:gpt-4o", "o200k_base" },
  { "gpt-4-", "cl100k_base" }, { "gpt-3.5-turbo-", "cl100k_base" },
  { "gpt-35-turbo-", "cl100k_base" }, { "ft:gpt-4", "cl100k_base" },
  { "ft:gpt-3.5-turbo", "cl100k_base" }, { "ft:davinci-002", "cl100k_base" },
  { "ft:babbage-002", "cl100k_base" },
}

local warned = {}

-- The model name without a "provider/" in front ("openai/gpt-4o",
-- "sim/gpt-4o-mini", "azure/gpt-35-turbo").
local function bare_model(model)
  return model:match("^[%w_.-]+/(.+)$") or model
end

--- encoding_for(model) -> encoding name, estimate
-- estimate is true when the model is unknown and o200k_base was assumed.
function M.encoding_for(model)
  if type(model) ~= "string" then
    error("bad argument #1 to 'encoding_for' (model name expected, got " .. type(model) .. ")", 2)
  end
  local name = bare_model(model)
  local enc = model_encoding[name]
  if enc then return enc, false end
  for _, p in ipairs(model_prefixes) do
    if name:sub(1, #p[1]) == p[1] then return p[2], false end
  end
  if not warned[model] then
    warned[model] = true
    io.stderr:write(("llmrun: warning: no known tokenizer for model '%s'; counting with %s "
      .. "(an estimate)\n"):format(model, M.default_encoding))
  end
  return M.default_encoding, true
end

-- model or encoding name (or nil) -> encoding, estimate
local function resolve(spec, level)
  if spec == nil then return M.default_encoding, false end
  if type(spec) ~= "string" then
    error("bad model or encoding (string expected, got " .. type(spec) .. ")", level + 1)
  end
  if is_encoding[spec] then return spec, false end
  return M.encoding_for(spec)
end

local function check_text(text, fname)
  if type(text) ~= "string" then
    error(("bad argument #1 to '%s' (string expected, got %s)"):format(fname, type(text)), 3)
  end
end

local function special(opts)
  return opts ~= nil and opts.special == true
end

--- count(text, model_or_encoding, opts) -> n, estimate
function M.count(text, model, opts)
  check_text(text, "count")
  local enc, estimate = resolve(model, 2)
  local n, err = tok.count(text, enc, special(opts))
  if not n then return nil, err end
  return n, estimate
end

--- encode(text, model_or_encoding, opts) -> ids, estimate
function M.encode(text, model, opts)
  check_text(text, "encode")
  local enc, estimate = resolve(model, 2)
  local ids, err = tok.encode(text, enc, special(opts))
  if not ids then return nil, err end
  return ids, estimate
end

--- decode(ids, model_or_encoding) -> text
function M.decode(ids, model)
  if type(ids) ~= "table" then
    error("bad argument #1 to 'decode' (table of ids expected, got " .. type(ids) .. ")", 2)
  end
  return (tok.decode(ids, (resolve(model, 2))))
end

--- truncate(text, n, model_or_encoding, opts) -> text, tokens
-- Cuts text to at most n tokens at token boundaries, never inside a UTF-8
-- character. opts.side says where the cut is: "tail" (default: keep the
-- beginning), "head" (keep the end) or "middle" (keep both ends, joined by
-- opts.marker, default "…", whose tokens count toward n).
function M.truncate(text, n, model, opts)
  check_text(text, "truncate")
  if math.type(n) ~= "integer" or n < 0 then
    error("bad argument #2 to 'truncate' (token count >= 0 expected)", 2)
  end
  opts = opts or {}
  local side = opts.side or "tail"
  if side ~= "tail" and side ~= "head" and side ~= "middle" then
    error("bad option 'side' to 'truncate' (\"head\", \"tail\" or \"middle\" expected)", 2)
  end
  local enc = resolve(model, 2)
  local sp = special(opts)
  local total, err = tok.count(text, enc, sp)
  if not total then return nil, err end
  if total <= n then return text, total end
  local out
  if side == "tail" then
    out = text:sub(1, assert(tok.head_bytes(text, enc, n, sp)))
  elseif side == "head" then
    out = text:sub(#text - assert(tok.tail_bytes(text, enc, n, sp)) + 1)
  else
    local marker = opts.marker or "…"
    local budget = n - tok.count(marker, enc, sp)
    if budget <= 0 then
      out = text:sub(1, assert(tok.head_bytes(text, enc, n, sp)))
    else
      -- joining can merge tokens across the seam, rarely making the whole
      -- longer than its parts: take fewer from the tail until it fits
      local head_n = (budget + 1) // 2
      local tail_n = budget - head_n
      local head = text:sub(1, assert(tok.head_bytes(text, enc, head_n, sp)))
      repeat
        local tail = text:sub(#text - assert(tok.tail_bytes(text, enc, tail_n, sp)) + 1)
        out = head .. marker .. tail
        tail_n = tail_n - 1
      until tail_n < 0 or tok.count(out, enc, sp) <= n
      if tok.count(out, enc, sp) > n then out = head end
    end
  end
  return out, tok.count(out, enc, sp)
end

-- ---- chat requests ----------------------------------------------------------
-- The OpenAI cookbook's rules ("How to count tokens with tiktoken",
-- RELIABILITY.md C.4): each message costs 3 tokens plus the tokens of each
-- of its string values, a "name" 1 more, and the reply is primed with 3
-- (<|start|>assistant<|message|>); gpt-3.5-turbo-0301 used 4 per message
-- and -1 per name. Function tools add func_init per function (7 for the
-- o200k models, 10 for cl100k), the tokens of "name:description" (one
-- final "." dropped), prop_init 3 if it has properties, and per property
-- prop_key 3, the tokens of "key:type:description", enum_init -3 and per
-- enum item 3 plus its tokens; func_end 12 once after all tools. The
-- cookbook calls these counts "an estimate, not a timeless guarantee".

local function count_value(value, enc)
  return tok.count(value, enc, false)
end

-- Tokens of a message's content when it is a list of parts: text parts
-- count as text; images and audio are not counted (their cost is not
-- tokenized text).
local function content_parts(parts, enc)
  local n = 0
  for _, part in ipairs(parts) do
    if type(part) == "string" then
      n = n + count_value(part, enc)
    elseif type(part) == "table" and type(part.text) == "string" then
      n = n + count_value(part.text, enc)
    end
  end
  return n
end

-- Tool calls in an assistant message: the function name and the
-- arguments JSON (outside the cookbook's rules: an estimate).
local function tool_calls(calls, enc)
  local n = 0
  for _, call in ipairs(calls) do
    local f = type(call) == "table" and call["function"]
    if type(f) == "table" then
      if type(f.name) == "string" then n = n + count_value(f.name, enc) end
      if type(f.arguments) == "string" then n = n + count_value(f.arguments, enc) end
    end
  end
  return n
end

local function drop_final_period(s)
  return (s:gsub("%.$", ""))
end

local function tools_tokens(tools, enc)
  if type(tools) ~= "table" or #tools == 0 then return 0 end
  local func_init = enc == "cl100k_base" and 10 or 7
  local n = 0
  for _, t in ipairs(tools) do
    local f = type(t) == "table" and (t["function"] or t) or {}
    n = n + func_init
    n = n + count_value(tostring(f.name or "") .. ":" .. drop_final_period(tostring(f.description or "")), enc)
    local props = type(f.parameters) == "table" and f.parameters.properties
    if type(props) == "table" and next(props) ~= nil then
      n = n + 3 -- prop_init
      for key, p in pairs(props) do
        p = type(p) == "table" and p or {}
        n = n + 3 -- prop_key
        if type(p.enum) == "table" then
          n = n - 3 -- enum_init
          for _, item in ipairs(p.enum) do
            n = n + 3 + count_value(tostring(item), enc)
          end
        end
        local ptype = type(p.type) == "table" and table.concat(p.type, ",") or tostring(p.type or "")
        n = n + count_value(tostring(key) .. ":" .. ptype .. ":"
          .. drop_final_period(tostring(p.description or "")), enc)
      end
    end
  end
  return n + 12 -- func_end
end

--- chat(messages, model, opts) -> n, estimate
-- Prompt tokens of a chat request; opts.tools: the request's tools.
function M.chat(messages, model, opts)
  if type(messages) ~= "table" then
    error("bad argument #1 to 'chat' (messages table expected, got " .. type(messages) .. ")", 2)
  end
  local enc, estimate = resolve(model, 2)
  local per_message, per_name = 3, 1
  if type(model) == "string" and bare_model(model) == "gpt-3.5-turbo-0301" then
    per_message, per_name = 4, -1
  end
  local n = 0
  for _, message in ipairs(messages) do
    n = n + per_message
    if type(message) == "table" then
      for key, value in pairs(message) do
        if type(value) == "string" then
          n = n + count_value(value, enc)
          if key == "name" then n = n + per_name end
        elseif key == "content" and type(value) == "table" then
          n = n + content_parts(value, enc)
        elseif key == "tool_calls" and type(value) == "table" then
          n = n + tool_calls(value, enc)
        end
      end
    end
  end
  n = n + 3 -- every reply is primed with <|start|>assistant<|message|>
  if opts and opts.tools then n = n + tools_tokens(opts.tools, enc) end
  return n, estimate
end

--- request(req) -> n, estimate
-- Prompt tokens of a request table as llmrun's model layer builds it:
-- {model=, messages=, tools=, system=, prompt=}. A `system` string counts
-- as a leading system message and a `prompt` string as a user message.
function M.request(req)
  if type(req) ~= "table" then
    error("bad argument #1 to 'request' (request table expected, got " .. type(req) .. ")", 2)
  end
  local messages = req.messages
  if type(req.system) == "string" or type(req.prompt) == "string" then
    messages = {}
    if type(req.system) == "string" then messages[1] = { role = "system", content = req.system } end
    for _, m in ipairs(req.messages or {}) do messages[#messages + 1] = m end
    if type(req.prompt) == "string" then
      messages[#messages + 1] = { role = "user", content = req.prompt }
    end
  end
  return M.chat(messages or {}, req.model, { tools = req.tools })
end

return M
