-- What-if repricing of logged calls: llm.pricing.reprice(records, target).
-- Nothing is called; every record is priced again from its token counts.
--
-- records: a list of call-log rows {model=, provider=, prompt_tokens=,
--   completion_tokens=, cached_tokens=, cache_creation_tokens=,
--   input_tokens=, cost=, cached=}. A row is Anthropic-style when it has
--   input_tokens and cache_creation_tokens and they add up with
--   cached_tokens to prompt_tokens (or prompt_tokens is absent), so a log
--   that stores 0 instead of NULL in those columns for OpenAI rows is still
--   read right. A cache hit (cached / cache_kind / cache is true or a kind
--   like "exact", not "none"/"miss") costs 0 before and after. A row with
--   no tokens and no cost (a failed call) costs 0.
-- target:
--   "gpt-4o-mini"              every call priced as that model
--   {input=, output=, ...}     every call priced with these prices (an entry
--                              as llm.pricing.set takes, USD per token)
--   {batch = true}             each call at its own model's Batch API price
--   {cache_discount = 0.9}     cached tokens cost (1 - 0.9) * input
--   {model = "x", batch = true, ...} or {prices = {...}, cache_discount = ...}
--                              combinations
-- Returns {target=, calls=, before=, after=, before_unknown=, after_unknown=,
--   models = {{model=, calls=, before=, after=, before_unknown=,
--   after_unknown=}, ... sorted by before, largest first}}, where before
-- is the logged cost (cost), after the new one, both in USD summed over
-- the rows whose cost is known (the *_unknown counts say how many are not).
-- A target model with no price returns nil, err.
local M = {}

local function num(v)
  return type(v) == "number" and v == v and v or nil
end

local function is_hit(row)
  for _, k in ipairs { "cached", "cache_kind", "cache" } do
    local v = row[k]
    if v == true then return true end
    if type(v) == "string" and v ~= "" and v ~= "none" and v ~= "miss" and v ~= "false" then
      return true
    end
    if type(v) == "number" and v ~= 0 then return true end
  end
  return false
end

-- A row's token counts as a usage table pricing.cost understands.
local function usage_of(row)
  local prompt, cached = num(row.prompt_tokens), num(row.cached_tokens) or 0
  local input, write = num(row.input_tokens), num(row.cache_creation_tokens)
  local u = { completion_tokens = num(row.completion_tokens) or 0, cached_tokens = cached }
  if input and write and (prompt == nil or prompt == input + write + cached) then
    u.input_tokens, u.cache_creation_tokens = input, write
    u.prompt_tokens = input + write + cached
  else
    u.prompt_tokens = prompt or 0
    -- OpenAI-style cache writes (no input_tokens): part of prompt_tokens
    if input == nil then u.cache_creation_tokens = write end
  end
  return u
end

local function has_tokens(row)
  return (num(row.prompt_tokens) or 0) > 0 or (num(row.completion_tokens) or 0) > 0
    or (num(row.input_tokens) or 0) > 0 or (num(row.cache_creation_tokens) or 0) > 0
end

local function check_prices(t)
  if type(t.input) ~= "number" or type(t.output) ~= "number" then
    error("reprice: a price table needs input and output (USD per token)", 4)
  end
  return t
end

-- target -> {entry = fixed entry or nil, opts = cost options, label = text} | nil, err
local function plan(pricing, target)
  if type(target) == "string" then
    target = { model = target }
  elseif type(target) ~= "table" then
    error("bad argument #2 to 'pricing.reprice' (model name or table expected, got "
      .. type(target) .. ")", 3)
  elseif type(target.input) == "number" then
    target = { prices = target }
  end
  local p = { opts = { quiet = true, batch = target.batch and true or nil,
                       cache_discount = target.cache_discount } }
  local d = target.cache_discount
  if d ~= nil and (type(d) ~= "number" or d < 0 or d > 1) then
    error("reprice: cache_discount must be a number in 0..1", 3)
  end
  local label = {}
  if target.model ~= nil then
    if type(target.model) ~= "string" then error("reprice: model must be a name", 3) end
    p.entry = pricing.get(target.model)
    if not p.entry then
      return nil, require("llm.errors").new("unknown_model",
        ("no price known for model \"%s\" (set one with llm.pricing.set)"):format(target.model),
        { model = target.model })
    end
    p.model = target.model
    label[#label + 1] = target.model
  elseif target.prices ~= nil then
    if type(target.prices) ~= "table" then error("reprice: prices must be a table", 3) end
    p.entry = check_prices(target.prices)
    p.model = target.prices.name or "custom prices"
    label[#label + 1] = p.model
  end
  if p.opts.batch then label[#label + 1] = "batch" end
  if d then label[#label + 1] = ("cache_discount=%g"):format(d) end
  p.label = #label > 0 and table.concat(label, ", ") or "current prices"
  return p
end

function M.reprice(pricing, records, target)
  if type(records) ~= "table" then
    error("bad argument #1 to 'pricing.reprice' (list of call-log rows expected)", 3)
  end
  local p, err = plan(pricing, target)
  if not p then return nil, err end
  local out = { target = p.label, calls = 0, before = 0, after = 0,
                before_unknown = 0, after_unknown = 0, models = {} }
  local by = {}
  for i, row in ipairs(records) do
    if type(row) ~= "table" then
      error(("bad argument #1 to 'pricing.reprice' (row %d is a %s)"):format(i, type(row)), 3)
    end
    local name = type(row.model) == "string" and row.model or "?"
    local m = by[name]
    if not m then
      m = { model = name, calls = 0, before = 0, after = 0, before_unknown = 0, after_unknown = 0 }
      by[name] = m
      out.models[#out.models + 1] = m
    end
    local before = num(row.cost)
    local after
    if is_hit(row) then
      before, after = before or 0, 0
    elseif not has_tokens(row) then
      before, after = before or 0, 0
    else
      local e = p.entry or (name ~= "?" and pricing.get(name)) or nil
      after = e and pricing.cost_with(e, usage_of(row), p.opts) or nil
    end
    m.calls, out.calls = m.calls + 1, out.calls + 1
    if before then
      m.before, out.before = m.before + before, out.before + before
    else
      m.before_unknown, out.before_unknown = m.before_unknown + 1, out.before_unknown + 1
    end
    if after then
      m.after, out.after = m.after + after, out.after + after
    else
      m.after_unknown, out.after_unknown = m.after_unknown + 1, out.after_unknown + 1
    end
  end
  table.sort(out.models, function(a, b)
    if a.before ~= b.before then return a.before > b.before end
    return a.model < b.model
  end)
  return out
end

--- A reprice target from a command-line word: "MODEL", "batch",
-- "cache_discount=0.9", a Lua table literal "{input=1e-6, output=2e-6}" or
-- "{model='gpt-4o-mini', batch=true}", or a comma list of the first three
-- ("gpt-4o-mini,batch"). Returns target | nil, message.
function M.parse_target(text)
  if type(text) ~= "string" or text == "" then return nil, "empty reprice target" end
  if text:match("^%s*{") then
    local chunk, err = load("return " .. text, "=reprice", "t", {})
    if not chunk then return nil, "bad price table: " .. err end
    local ok, t = pcall(chunk)
    if not ok or type(t) ~= "table" then return nil, "bad price table: " .. tostring(t) end
    return t
  end
  local t = {}
  for word in text:gmatch("[^,]+") do
    word = word:match("^%s*(.-)%s*$")
    local d = word:match("^cache[_%-]discount=(.+)$")
    if word == "batch" then
      t.batch = true
    elseif d then
      t.cache_discount = tonumber(d)
      if not t.cache_discount then return nil, "cache_discount needs a number, got " .. d end
    elseif t.model == nil and word ~= "" then
      t.model = word
    else
      return nil, "cannot read reprice target part '" .. word .. "'"
    end
  end
  return t
end

return M
