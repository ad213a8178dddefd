-- Generates lualib/llm/pricing_data.lua, llmrun's price table, from
-- LiteLLM's model_prices_and_context_window.json (a filtered copy lives in
-- ../shared/reference, synced 2026-07-24 from the public repository
-- Wei-Shaw/model-price-repo, commit f9ff147; see its README.md).
--
--   lua5.4 scripts/gen_pricing.lua [JSON [OUT]]      (needs lua-cjson)
--   build/llmrun scripts/gen_pricing.lua [JSON [OUT]]
--
-- The product never reads the JSON: it loads the generated Lua table, on
-- first use. Kept per model (USD per token): input, output, cache_read,
-- cache_write (5-minute writes), cache_write_1h, batch_input,
-- batch_output, long-context tiers {above = N, input, output, cache_read,
-- cache_write, cache_write_1h}, max_input_tokens, max_output_tokens,
-- provider (LiteLLM's litellm_provider) and mode, and web_search (USD
-- per server-side search: search_context_cost_per_query, medium size).
-- Priority/flex service tiers, audio and image prices are left out:
-- llmrun does not make those calls.
--
-- Anthropic's cache-write rule: a 5-minute write costs 1.25x the base
-- input price and a 1-hour write 2x (platform.claude.com/docs/en/
-- about-claude/pricing, "Prompt caching"). Every claude-* row (and its
-- tiers) is checked against it: a missing or different 1-hour price and
-- a missing 5-minute price are set by the rule, and the generated file
-- lists those rows.
-- CLAUDE_EXTRA adds Claude rows the source lacks (claude-3-5-*, the
-- -latest aliases), from the same pricing page.
local cjson = require "cjson"

local SOURCE = "LiteLLM model_prices_and_context_window.json, as synced on 2026-07-24 "
  .. "(public repository Wei-Shaw/model-price-repo, commit f9ff147)"
local SYNCED = "2026-07-24"

local in_path = arg[1] or "../shared/reference/model_prices_and_context_window.json"
local out_path = arg[2] or "lualib/llm/pricing_data.lua"

-- Modes whose prices are per text token and that llmrun calls.
local MODES = { chat = true, responses = true, completion = true, embedding = true }

-- Embedding models are not in the reference file; their list prices (USD
-- per 1M tokens) come from the reference README (OpenAI's price list).
local EXTRA = {
  ["text-embedding-3-small"] = { provider = "openai", mode = "embedding", input = 0.02e-6, output = 0 },
  ["text-embedding-3-large"] = { provider = "openai", mode = "embedding", input = 0.13e-6, output = 0 },
  ["text-embedding-ada-002"] = { provider = "openai", mode = "embedding", input = 0.10e-6, output = 0 },
}

-- Claude rows the source lacks (USD per token), from Anthropic's pricing
-- page: Claude Sonnet 3.5 $3 / $15 per 1M tokens, Claude Haiku 3.5 $0.80 /
-- $4; cache prices by the rule below. -latest aliases name the newest
-- snapshot of each.
local function claude_row(input, output, max_output)
  return { provider = "anthropic", mode = "chat", input = input, output = output,
           cache_read = input / 10, max_input_tokens = 200000, max_output_tokens = max_output }
end
local CLAUDE_EXTRA = {
  ["claude-3-5-sonnet-20240620"] = claude_row(3e-6, 15e-6, 8192),
  ["claude-3-5-sonnet-20241022"] = claude_row(3e-6, 15e-6, 8192),
  ["claude-3-5-sonnet-latest"] = claude_row(3e-6, 15e-6, 8192),
  ["claude-3-5-haiku-20241022"] = claude_row(0.8e-6, 4e-6, 8192),
  ["claude-3-5-haiku-latest"] = claude_row(0.8e-6, 4e-6, 8192),
}
-- aliases of rows the source has: alias -> row
local CLAUDE_ALIASES = {
  ["claude-3-7-sonnet-latest"] = "claude-3-7-sonnet-20250219",
  ["claude-3-opus-latest"] = "claude-3-opus-20240229",
}

local function num(v)
  if type(v) == "number" and v == v and v >= 0 and v < math.huge then return v end
  return nil
end

local function int(v)
  v = num(v)
  if v and v == math.floor(v) then return math.tointeger(v) end
  return nil
end

-- {above = N, ...} for every *_above_<N>[k]_tokens field (not priority/flex
-- variants, not the 1-hour write sibling, which joins its threshold).
local function tiers_of(m)
  local by = {}
  local function tier(th)
    by[th] = by[th] or { above = th }
    return by[th]
  end
  for k, v in pairs(m) do
    local base, n, k_suffix = k:match("^(.-)_above_(%d+)(k?)_tokens$")
    if base and num(v) then
      local th = math.tointeger(tonumber(n) * (k_suffix == "k" and 1000 or 1))
      local field = ({
        input_cost_per_token = "input",
        output_cost_per_token = "output",
        cache_read_input_token_cost = "cache_read",
        cache_creation_input_token_cost = "cache_write",
        cache_creation_input_token_cost_above_1hr = "cache_write_1h",
      })[base]
      if field then tier(th)[field] = num(v) end
    end
  end
  local list = {}
  for _, t in pairs(by) do list[#list + 1] = t end
  table.sort(list, function(a, b) return a.above < b.above end)
  return #list > 0 and list or nil
end

local function entry_of(m)
  local input = num(m.input_cost_per_token)
  if input == nil or not MODES[m.mode] then return nil end
  local output = num(m.output_cost_per_token)
  if output == nil then
    if m.mode ~= "embedding" then return nil end
    output = 0
  end
  return {
    provider = m.litellm_provider,
    mode = m.mode,
    input = input,
    output = output,
    cache_read = num(m.cache_read_input_token_cost) or num(m.input_cost_per_token_cache_hit),
    cache_write = num(m.cache_creation_input_token_cost),
    cache_write_1h = num(m.cache_creation_input_token_cost_above_1hr),
    batch_input = num(m.input_cost_per_token_batches),
    batch_output = num(m.output_cost_per_token_batches),
    web_search = type(m.search_context_cost_per_query) == "table"
      and num(m.search_context_cost_per_query.search_context_size_medium) or nil,
    tiers = tiers_of(m),
    max_input_tokens = int(m.max_input_tokens),
    max_output_tokens = int(m.max_output_tokens),
  }
end

-- The shortest decimal that reads back as the same double.
local function fmt_number(v)
  if math.type(v) == "integer" then return tostring(v) end
  if v == 0 then return "0" end
  for digits = 1, 17 do
    local s = ("%." .. digits .. "g"):format(v)
    if tonumber(s) == v then return s end
  end
  return ("%.17g"):format(v)
end

local FIELDS = { "provider", "mode", "input", "output", "cache_read", "cache_write",
  "cache_write_1h", "batch_input", "batch_output", "web_search", "max_input_tokens",
  "max_output_tokens" }
local TIER_FIELDS = { "above", "input", "output", "cache_read", "cache_write", "cache_write_1h" }

local function fmt_value(v)
  if type(v) == "string" then return ("%q"):format(v) end
  return fmt_number(v)
end

local function fmt_fields(t, fields)
  local parts = {}
  for _, f in ipairs(fields) do
    if t[f] ~= nil then parts[#parts + 1] = f .. "=" .. fmt_value(t[f]) end
  end
  return table.concat(parts, ",")
end

local function fmt_entry(e)
  local s = fmt_fields(e, FIELDS)
  if e.tiers then
    local ts = {}
    for i, t in ipairs(e.tiers) do ts[i] = "{" .. fmt_fields(t, TIER_FIELDS) .. "}" end
    s = s .. ",tiers={" .. table.concat(ts, ",") .. "}"
  end
  return "{" .. s .. "}"
end

local f = assert(io.open(in_path, "rb"))
local doc = cjson.decode(f:read("a"))
f:close()

local models, skipped = {}, {}
for name, m in pairs(doc) do
  if type(m) == "table" then
    local e = entry_of(m)
    if e then models[name] = e else skipped[#skipped + 1] = name end
  end
end
for name, e in pairs(EXTRA) do
  if not models[name] then models[name] = e end
end
for name, e in pairs(CLAUDE_EXTRA) do
  if not models[name] then models[name] = e end
end
for alias, name in pairs(CLAUDE_ALIASES) do
  if not models[alias] and models[name] then
    local copy = {}
    for k, v in pairs(models[name]) do copy[k] = v end
    models[alias] = copy
  end
end

-- Anthropic's rule: write 5m = 1.25 x input, write 1h = 2 x input, for the
-- base prices and each tier (a tier without its own input uses the base).
local function rule_price(input, factor)
  return tonumber(("%.12g"):format(input * factor))
end
local function same(a, b)
  return a ~= nil and math.abs(a - b) <= 1e-9 * math.max(math.abs(a), math.abs(b))
end
local derived = {} -- "name: what" lines for the generated header
-- The 1-hour price must follow the rule (the source had wrong ones); a
-- 5-minute price is only filled in when missing, because Anthropic's own
-- table departs from the rule there once (Claude Haiku 3: $0.30, not
-- 1.25 x $0.25).
local function apply_rule(name, t, input, where)
  for field, factor in pairs({ cache_write = 1.25, cache_write_1h = 2 }) do
    local want = rule_price(input, factor)
    if (field == "cache_write_1h" or t[field] == nil) and not same(t[field], want) then
      derived[#derived + 1] = ("%s%s %s %s -> %s"):format(name, where, field,
        t[field] and ("was " .. tostring(t[field])) or "missing", tostring(want))
      t[field] = want
    end
  end
end
for name, e in pairs(models) do
  if name:match("^claude") then
    apply_rule(name, e, e.input, "")
    for _, t in ipairs(e.tiers or {}) do apply_rule(name, t, t.input or e.input, (" (above %d)"):format(t.above)) end
  end
end
table.sort(derived)

local names = {}
for name in pairs(models) do names[#names + 1] = name end
table.sort(names)
table.sort(skipped)

local out = {}
out[#out + 1] = "-- llmrun's price table (USD per token). GENERATED by scripts/gen_pricing.lua: do not edit."
out[#out + 1] = "-- Source: " .. SOURCE .. ";"
out[#out + 1] = "-- text-embedding-3-small/-3-large/ada-002: OpenAI list prices (0.02/0.13/0.10 USD per 1M)."
out[#out + 1] = "-- claude-3-5-* and -latest aliases: Anthropic's pricing page (not in the source)."
out[#out + 1] = ("-- %d models; left out (image, audio, realtime or unpriced): %s."):format(#names,
  table.concat(skipped, ", "))
out[#out + 1] = "-- Cache-write prices set by Anthropic's rule (1h = 2x input always; 5m = 1.25x input where missing):"
for _, line in ipairs(derived) do out[#out + 1] = "--   " .. line end
out[#out + 1] = "return {"
out[#out + 1] = ("source=%q,"):format(SOURCE)
out[#out + 1] = ("synced=%q,"):format(SYNCED)
out[#out + 1] = "models={"
for _, name in ipairs(names) do
  out[#out + 1] = ("[%q]=%s,"):format(name, fmt_entry(models[name]))
end
out[#out + 1] = "}}"

local text = table.concat(out, "\n") .. "\n"
local o = assert(io.open(out_path, "wb"))
o:write(text)
o:close()
io.stderr:write(("gen_pricing: %d models, %d left out, %d bytes -> %s\n"):format(
  #names, #skipped, #text, out_path))
