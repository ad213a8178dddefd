-- OpenAI-shaped chat requests -> Anthropic Messages API requests.
--
--   prepare(body, ctx) -> body    checks body against the rules of
--                                 llm.model_rules.anthropic (unknown
--                                 parameters raise, unsupported ones follow
--                                 the drop_params policy) and maps it once
--   encode(body, model, stream) -> json_text, info
--                                 info.json_tool: the name of the forced
--                                 tool that carries a response_format
--
-- What maps to what (README "Anthropic requests"):
--   * system/developer messages -> `system` (a string, or text blocks when
--     any of them is a list of parts, so cache_control survives);
--   * content parts: text -> text blocks; image_url with a data: URL ->
--     {type="image", source={type="base64", media_type, data}}, with an
--     http(s) URL -> source {type="url", url}; the Messages API's own block
--     types pass through;
--   * assistant tool_calls -> tool_use blocks {id, name, input}, input being
--     the arguments' JSON text spliced in as it is (no decode/encode round
--     trip, so "[]", long numbers and "\/" survive);
--   * role = "tool" messages -> tool_result blocks {tool_use_id, content};
--     consecutive results, and a user message right after them, form one
--     user turn (the API wants the results first in that turn);
--   * tools -> {name, description, input_schema}; tool_choice auto/none/
--     required/{function} -> {type = auto/none/any/tool}; parallel_tool_calls
--     = false -> tool_choice.disable_parallel_tool_use;
--   * response_format json_schema (or json_object) -> one forced tool whose
--     input is the schema; the answer's tool input comes back as r.text;
--   * reasoning_effort -> thinking {type = "enabled", budget_tokens} from
--     model_rules.anthropic.thinking_budgets ("none": no thinking);
--   * stop -> stop_sequences, max_completion_tokens -> max_tokens, user ->
--     metadata.user_id; max_tokens defaults to 4096.
local cjson = require "cjson"
local rules = require "llm.model_rules"
local params = require "llm.params"

local M = {}

M.DEFAULT_MAX_TOKENS = 4096

local null = cjson.null
local RULES = rules.anthropic

local function misuse(ctx, fmt, ...)
  error(("llm: %s (model \"%s\", provider %s)"):format(fmt:format(...), ctx.model, ctx.provider), 0)
end

local function nonnull(v)
  if v == null then return nil end
  return v
end

-- ---- content --------------------------------------------------------------------

-- Block types of the Messages API itself, accepted in content as they are.
local NATIVE_BLOCKS = {
  text = false, -- mapped below (only known fields kept)
  image = true, document = true, tool_use = true, tool_result = true, thinking = true,
  redacted_thinking = true, search_result = true, server_tool_use = true,
  web_search_tool_result = true, container_upload = true,
}

local function image_block(ctx, where, iu)
  local url = type(iu) == "table" and nonnull(iu.url) or iu
  if type(url) ~= "string" then misuse(ctx, "%s: image_url needs a url", where) end
  local detail = type(iu) == "table" and nonnull(iu.detail)
  if detail and detail ~= "auto" then
    params.reject(ctx, "image_url.detail", "is not supported", "drop")
  end
  local media, data = url:match("^data:([%w%.%+%-]+/[%w%.%+%-]+);base64,(.*)$")
  if media then
    return { type = "image", source = { type = "base64", media_type = media, data = data } }
  end
  if url:match("^https?://") then
    return { type = "image", source = { type = "url", url = url } }
  end
  misuse(ctx, "%s: an image_url must be a base64 data: URL or an http(s) URL", where)
end

local function text_block(part)
  return { type = "text", text = part.text, cache_control = part.cache_control,
           citations = part.citations }
end

-- message content -> a string or a list of Anthropic blocks
local function map_content(ctx, where, content)
  content = nonnull(content)
  if content == nil then return "" end
  if type(content) == "string" then return content end
  if type(content) ~= "table" then
    misuse(ctx, "%s.content must be a string or a list of parts", where)
  end
  local out = {}
  for i, part in ipairs(content) do
    local w = ("%s.content[%d]"):format(where, i)
    local t = type(part) == "table" and part.type
    if t == "text" then
      out[#out + 1] = text_block(part)
    elseif t == "image_url" then
      out[#out + 1] = image_block(ctx, w, part.image_url)
    elseif NATIVE_BLOCKS[t] then
      out[#out + 1] = part
    else
      misuse(ctx, "%s: content part type '%s' has no Anthropic counterpart", w, tostring(t))
    end
  end
  return out
end

local function as_blocks(content)
  if type(content) == "string" then
    return content ~= "" and { { type = "text", text = content } } or {}
  end
  return content
end

-- ---- tool calls in assistant messages --------------------------------------------

-- The arguments' JSON text goes into the body as it is: the encoded body
-- gets a placeholder string that encode() replaces.
local function tool_use_input(ctx, where, args, raws)
  if type(args) == "table" then return args end
  if args == nil or args == null then args = "" end
  if type(args) ~= "string" then misuse(ctx, "%s.arguments must be a JSON text", where) end
  if args:match("^%s*$") then args = "{}" end
  local ok, v = pcall(cjson.decode, args)
  if not ok or type(v) ~= "table" or not args:match("^%s*{") then
    misuse(ctx, "%s.arguments is not a JSON object: %s", where, args:sub(1, 80))
  end
  raws[#raws + 1] = args
  return ("\1llmrun-raw-%d\1"):format(#raws)
end

local MESSAGE_FIELDS = { role = true, content = true, tool_calls = true, tool_call_id = true }

local function check_fields(ctx, where, m)
  for k in pairs(m) do
    if not MESSAGE_FIELDS[k] then
      local rule = RULES.message_fields[k]
      if rule then
        params.reject(ctx, where .. "." .. tostring(k), "is not supported", rule.action)
      else
        misuse(ctx, "%s has an unknown field '%s'", where, tostring(k))
      end
    end
  end
end

local function map_messages(ctx, list, raws)
  local system, msgs = {}, {}
  local system_blocks = false
  local results_turn = nil -- the user turn that collects tool results
  for i, m in ipairs(list) do
    local where = ("messages[%d]"):format(i)
    check_fields(ctx, where, m)
    local role = m.role
    if role == "system" or role == "developer" then
      local c = map_content(ctx, where, m.content)
      if type(c) == "table" then system_blocks = true end
      system[#system + 1] = c
      results_turn = nil
    elseif role == "tool" then
      local id = nonnull(m.tool_call_id)
      if type(id) ~= "string" then misuse(ctx, "%s: a tool message needs tool_call_id", where) end
      local c = map_content(ctx, where, m.content)
      local block = { type = "tool_result", tool_use_id = id, content = c }
      if results_turn then
        results_turn.content[#results_turn.content + 1] = block
      else
        results_turn = { role = "user", content = { block } }
        msgs[#msgs + 1] = results_turn
      end
    elseif role == "user" then
      local c = map_content(ctx, where, m.content)
      if results_turn then -- after the results, in the same turn
        for _, b in ipairs(as_blocks(c)) do results_turn.content[#results_turn.content + 1] = b end
        results_turn = nil
      else
        msgs[#msgs + 1] = { role = "user", content = c }
      end
    elseif role == "assistant" then
      results_turn = nil
      local c = map_content(ctx, where, m.content)
      local calls = nonnull(m.tool_calls)
      if type(calls) == "table" and #calls > 0 then
        local blocks = as_blocks(c)
        for j, tc in ipairs(calls) do
          local w = ("%s.tool_calls[%d]"):format(where, j)
          local fn = type(tc) == "table" and nonnull(tc["function"])
          if type(fn) ~= "table" or type(fn.name) ~= "string" or type(tc.id) ~= "string" then
            misuse(ctx, "%s needs id and function.name", w)
          end
          blocks[#blocks + 1] = { type = "tool_use", id = tc.id, name = fn.name,
                                  input = tool_use_input(ctx, w .. ".function", fn.arguments, raws) }
        end
        c = blocks
      end
      msgs[#msgs + 1] = { role = "assistant", content = c }
    else
      misuse(ctx, "%s: unknown role '%s'", where, tostring(role))
    end
  end
  local sys
  if #system > 0 then
    if system_blocks then
      sys = {}
      for _, c in ipairs(system) do
        for _, b in ipairs(as_blocks(c)) do sys[#sys + 1] = b end
      end
    else
      sys = table.concat(system, "\n\n")
    end
  end
  return msgs, sys
end

-- ---- parameters -------------------------------------------------------------------

-- Map functions named by model_rules.anthropic: for {to =, map =} rules
-- fn(value, ctx) -> the value to send; for {map =} rules fn(value, st,
-- ctx) records into st, which finish() turns into fields.
local MAP = {}

function MAP.string_list(v, ctx)
  if type(v) == "string" then return { v } end
  if type(v) ~= "table" then misuse(ctx, "stop must be a string or a list of strings") end
  return v
end

function MAP.user_id(v, ctx)
  if type(v) ~= "string" then misuse(ctx, "user must be a string") end
  return { user_id = v }
end

function MAP.tools(v, st, ctx)
  if type(v) ~= "table" then misuse(ctx, "tools must be a list") end
  local out = {}
  for i, t in ipairs(v) do
    local fn = type(t) == "table" and t.type == "function" and nonnull(t["function"])
    if fn then
      if type(fn.name) ~= "string" then misuse(ctx, "tools[%d].function needs a name", i) end
      if fn.strict ~= nil then
        params.reject(ctx, ("tools[%d].function.strict"):format(i), "is not supported", "drop")
      end
      local schema = nonnull(fn.parameters)
      out[i] = { name = fn.name, description = nonnull(fn.description),
                 input_schema = schema or { type = "object", properties = {} },
                 cache_control = t.cache_control }
    elseif type(t) == "table" and (t.input_schema or (type(t.type) == "string" and t.type ~= "function")) then
      out[i] = t -- already an Anthropic tool (custom or a server tool such as web search)
    else
      misuse(ctx, "tools[%d] must be {type = \"function\", function = {name =, parameters =}}", i)
    end
  end
  st.tools = out
end

local CHOICES = { auto = "auto", none = "none", required = "any" }
local NATIVE_CHOICES = { auto = true, any = true, tool = true, none = true }

function MAP.tool_choice(v, st, ctx)
  if type(v) == "string" then
    if not CHOICES[v] then misuse(ctx, "tool_choice '%s' is not auto, none or required", v) end
    st.tool_choice = { type = CHOICES[v] }
  elseif type(v) == "table" and v.type == "function" then
    local fn = nonnull(v["function"])
    if type(fn) ~= "table" or type(fn.name) ~= "string" then
      misuse(ctx, "tool_choice {type = \"function\"} needs function.name")
    end
    st.tool_choice = { type = "tool", name = fn.name }
  elseif type(v) == "table" and NATIVE_CHOICES[v.type] then
    local copy = {}
    for k, x in pairs(v) do copy[k] = x end
    st.tool_choice = copy
  else
    misuse(ctx, "tool_choice must be auto, none, required or {type = \"function\", function = {name =}}")
  end
end

function MAP.parallel_tool_calls(v, st, ctx)
  if type(v) ~= "boolean" then misuse(ctx, "parallel_tool_calls must be a boolean") end
  st.parallel = v
end

function MAP.response_format(v, st, ctx)
  local t = type(v) == "table" and v.type
  if t == "text" then return end
  if t == "json_object" then
    st.json = { name = "json_response", schema = { type = "object" } }
  elseif t == "json_schema" then
    local js = nonnull(v.json_schema)
    if type(js) ~= "table" or type(nonnull(js.schema)) ~= "table" then
      misuse(ctx, "response_format json_schema needs json_schema.schema")
    end
    st.json = { name = type(js.name) == "string" and js.name or "json_response",
                description = nonnull(js.description), schema = js.schema }
  else
    misuse(ctx, "response_format type '%s' has no Anthropic counterpart", tostring(t))
  end
end

function MAP.reasoning_effort(v, st, ctx)
  if v == "none" then return end
  local budget = RULES.thinking_budgets[v]
  if not budget then
    misuse(ctx, "reasoning_effort '%s' is not none, minimal, low, medium or high", tostring(v))
  end
  st.thinking_budget = budget
end

-- Combines what the map functions recorded (they depend on each other).
local function finish(out, st, ctx)
  local tools, choice = st.tools, st.tool_choice
  if st.json then
    if tools or choice then
      misuse(ctx, "response_format cannot be combined with tools or tool_choice (it is sent as a forced tool)")
    end
    if out.thinking or st.thinking_budget then
      misuse(ctx, "response_format cannot be combined with thinking (Anthropic refuses forced tools with thinking)")
    end
    tools = { { name = st.json.name,
                description = st.json.description or "Respond with a JSON value matching this schema.",
                input_schema = st.json.schema } }
    choice = { type = "tool", name = st.json.name }
  end
  if st.parallel == false then
    choice = choice or { type = "auto" }
    choice.disable_parallel_tool_use = true
  end
  if st.thinking_budget then
    if out.thinking then misuse(ctx, "give reasoning_effort or thinking, not both") end
    out.thinking = { type = "enabled", budget_tokens = st.thinking_budget }
  end
  local thinking = nonnull(out.thinking)
  if type(thinking) == "table" and thinking.type == "enabled" and type(thinking.budget_tokens) == "number"
     and out.max_tokens <= thinking.budget_tokens then
    misuse(ctx, "max_tokens (%d) must be larger than the thinking budget (%d)", out.max_tokens,
      thinking.budget_tokens)
  end
  if type(thinking) == "table" and thinking.type == "enabled" and type(choice) == "table"
     and (choice.type == "any" or choice.type == "tool") and not st.json then
    misuse(ctx, "tool_choice %s cannot be combined with thinking (Anthropic allows only auto or none)",
      choice.type == "any" and "required" or "{function}")
  end
  out.tools, out.tool_choice = tools, choice
  return st.json and st.json.name or nil
end

-- body (checked by params.apply) -> Anthropic body table, info, raws
local function build(body, ctx)
  local out, st, raws = {}, {}, {}
  local P = RULES.params
  local names = {}
  for k in pairs(body) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local v, rule = body[k], P[k]
    if k == "messages" then
      out.messages, out.system = map_messages(ctx, v, raws)
    elseif rule == "copy" then
      out[k] = v
    elseif type(rule) == "table" and rule.map and rule.to then
      out[rule.to] = MAP[rule.map](v, ctx)
    elseif type(rule) == "table" and rule.map then
      MAP[rule.map](v, st, ctx)
    elseif type(rule) == "table" and rule.to then
      out[rule.to] = v
    end
  end
  if body.metadata and body.user then -- both: user joins the given metadata
    local md = {}
    for k, v in pairs(body.metadata) do md[k] = v end
    md.user_id = body.user
    out.metadata = md
  end
  if body.stop and body.stop_sequences then misuse(ctx, "give stop or stop_sequences, not both") end
  out.max_tokens = out.max_tokens or M.DEFAULT_MAX_TOKENS
  local info = { json_tool = finish(out, st, ctx) }
  return out, info, raws
end

-- ---- the two entry points ----------------------------------------------------------------

-- prepare() maps each body once; encode() finds the result here (weak
-- keys: a body nobody holds any more takes its mapping with it).
local prepared = setmetatable({}, { __mode = "k" })

local function default_ctx()
  return { model = "?", provider = "anthropic", family = RULES.family, strict = true }
end

function M.prepare(body, ctx)
  ctx.family, ctx.strict = RULES.family, true
  params.apply(RULES.params, body, ctx)
  local b, info, raws = build(body, ctx)
  prepared[body] = { b = b, info = info, raws = raws }
  return body
end

local function splice(text, raws)
  for i, raw in ipairs(raws) do
    local ph = ("\"\\u0001llmrun-raw-%d\\u0001\""):format(i)
    local s, e = text:find(ph, 1, true)
    if s then text = text:sub(1, s - 1) .. raw .. text:sub(e + 1) end
  end
  return text
end

--- The request body's JSON text (model and stream added) and its info.
function M.encode(body, model, stream)
  local p = prepared[body]
  if not p then
    local ctx = default_ctx()
    params.apply(RULES.params, body, ctx)
    local b, info, raws = build(body, ctx)
    p = { b = b, info = info, raws = raws }
  end
  local b = p.b
  b.model, b.stream = model, stream or nil
  -- extra = {...}: fields sent as they are, without any check
  local saved = {}
  for k, v in pairs(body.extra or {}) do saved[k] = { b[k] }; b[k] = v end
  local text = cjson.encode(b)
  for k, old in pairs(saved) do b[k] = old[1] end
  b.model, b.stream = nil, nil
  return splice(text, p.raws), p.info
end

return M
