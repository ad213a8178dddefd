-- llm.pricing: the cost rules of ../shared/RELIABILITY.md §A.36-39 with
-- hand-computed values, name resolution, overrides, the finish hook
-- (resp.cost on chat, embeddings, cache hits) and what-if repricing.
-- Prices used (USD per token, from lualib/llm/pricing_data.lua, LiteLLM
-- table synced 2026-07-24):
--   gpt-4o            in 2.5e-6  out 1e-5    cache_read 1.25e-6  batch 1.25e-6 / 5e-6
--   gpt-4o-mini       in 1.5e-7  out 6e-7    cache_read 7.5e-8
--   gpt-4             in 3e-5    out 6e-5    (no cache price)
--   o3                in 2e-6    out 8e-6    cache_read 5e-7
--   gpt-5.4           in 2.5e-6  out 1.5e-5  cache_read 2.5e-7  batch 1.25e-6 / 7.5e-6
--                     above 272k: in 5e-6 out 2.25e-5 cache_read 5e-7
--   claude-sonnet-4-5 in 3e-6    out 1.5e-5  cache_read 3e-7 write 3.75e-6 write_1h 6e-6
--                     above 200k: in 6e-6 out 2.25e-5 read 6e-7 write 7.5e-6 write_1h 1.2e-5
--   text-embedding-3-small in 2e-8
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local pricing = llm.pricing

local TOL = 1e-12

local function anth(input, write, read, output, write_1h)
  return { input_tokens = input, cache_creation_tokens = write, cached_tokens = read,
           cache_creation_1h_tokens = write_1h, completion_tokens = output,
           prompt_tokens = input + write + read, reasoning_tokens = 0 }
end

local function oai(prompt, cached, completion, reasoning)
  return { prompt_tokens = prompt, cached_tokens = cached, completion_tokens = completion,
           reasoning_tokens = reasoning or 0, total_tokens = prompt + completion }
end

-- {name, model, usage, opts, expected USD}
local COST_CASES = {
  -- OpenAI: (prompt - cached)*in + cached*cache_read + completion*out
  { "openai plain", "gpt-4o", oai(1000, 0, 200), nil, 1000 * 2.5e-6 + 200 * 1e-5 },
  { "openai cached tokens", "gpt-4o", oai(1000, 400, 200), nil,
    600 * 2.5e-6 + 400 * 1.25e-6 + 200 * 1e-5 },                       -- 0.004
  { "openai reasoning inside completion", "o3", oai(100, 0, 1000, 800), nil,
    100 * 2e-6 + 1000 * 8e-6 },                                           -- 0.0082, not 0.0146
  { "cache price missing -> input price", "gpt-4", oai(1000, 500, 100), nil,
    1000 * 3e-5 + 100 * 6e-5 },                                           -- 0.036
  { "cached above prompt is clamped", "gpt-4o", oai(100, 500, 0), nil, 100 * 1.25e-6 },
  { "embedding usage (no completion)", "text-embedding-3-small", { prompt_tokens = 1000 }, nil,
    1000 * 2e-8 },
  -- Anthropic: input*in + creation*write + read*cache_read + output*out
  { "anthropic cache write and read", "claude-sonnet-4-5", anth(1000, 2000, 3000, 500), nil,
    1000 * 3e-6 + 2000 * 3.75e-6 + 3000 * 3e-7 + 500 * 1.5e-5 },          -- 0.0189
  { "anthropic 1h cache writes", "claude-sonnet-4-5", anth(1000, 2000, 3000, 500, 1000), nil,
    1000 * 3e-6 + 1000 * 3.75e-6 + 1000 * 6e-6 + 3000 * 3e-7 + 500 * 1.5e-5 }, -- 0.02115
  { "anthropic snapshot name", "claude-sonnet-4-5-20250929", anth(10, 0, 0, 10), nil,
    10 * 3e-6 + 10 * 1.5e-5 },
  -- tiers: strictly above the threshold, counting every prompt token
  { "anthropic tier at exactly 200k: base", "claude-sonnet-4-5", anth(200000, 0, 0, 0), nil,
    200000 * 3e-6 },                                                      -- 0.6
  { "anthropic tier above 200k (cache counts)", "claude-sonnet-4-5",
    anth(150000, 30000, 30000, 1000), nil,
    150000 * 6e-6 + 30000 * 7.5e-6 + 30000 * 6e-7 + 1000 * 2.25e-5 },      -- 1.1655
  { "openai tier at exactly 272k: base", "gpt-5.4", oai(272000, 0, 0), nil, 272000 * 2.5e-6 },
  { "openai tier above 272k", "gpt-5.4", oai(300000, 100000, 1000), nil,
    200000 * 5e-6 + 100000 * 5e-7 + 1000 * 2.25e-5 },                     -- 1.0725
  -- batch: the table's batch prices, else half price; tiers scale alike
  { "batch from the table", "gpt-4o", oai(1000, 0, 200), { batch = true },
    1000 * 1.25e-6 + 200 * 5e-6 },                                        -- 0.00225
  { "batch scales cache reads", "gpt-4o", oai(1000, 400, 200), { batch = true },
    600 * 1.25e-6 + 400 * 1.25e-6 * 0.5 + 200 * 5e-6 },
  { "batch without table prices: half", "claude-sonnet-4-5", anth(1000, 0, 1000, 1000),
    { batch = true }, (1000 * 3e-6 + 1000 * 3e-7 + 1000 * 1.5e-5) / 2 },    -- 0.00915
  { "batch above a tier", "gpt-5.4", oai(300000, 100000, 1000), { batch = true },
    (200000 * 5e-6 + 100000 * 5e-7 + 1000 * 2.25e-5) / 2 },               -- 0.53625
  { "cache discount what-if", "gpt-4o", oai(1000, 400, 200), { cache_discount = 0.9 },
    600 * 2.5e-6 + 400 * 2.5e-6 * 0.1 + 200 * 1e-5 },                      -- 0.0036
  -- simulated and prefixed names cost what the real model costs
  { "sim/ prefix", "sim/gpt-4o-mini", oai(1000, 0, 1000), nil, 1000 * 1.5e-7 + 1000 * 6e-7 },
  -- OpenAI-style cache writes (prompt_tokens_details.cache_write_tokens):
  -- part of prompt_tokens, priced at cache_write (constructed: no real
  -- recording with a non-zero value was found)
  { "openai-style cache writes", "claude-sonnet-4-5",
    { prompt_tokens = 1000, cached_tokens = 300, cache_creation_tokens = 200, completion_tokens = 10 },
    nil, 500 * 3e-6 + 300 * 3e-7 + 200 * 3.75e-6 + 10 * 1.5e-5 },
  -- Anthropic server tools: web searches at 10 USD per 1000
  { "anthropic web searches", "claude-sonnet-4-5",
    (function() local u = anth(100, 0, 0, 10); u.web_search_requests = 3; return u end)(), nil,
    100 * 3e-6 + 10 * 1.5e-5 + 3 * 0.01 },
  -- rows filled in for the README's own example (claude-3-5-*)
  { "claude-3-5-haiku-latest", "anthropic/claude-3-5-haiku-latest", anth(1000, 1000, 1000, 100, 500), nil,
    1000 * 8e-7 + 500 * 1e-6 + 500 * 1.6e-6 + 1000 * 8e-8 + 100 * 4e-6 },
  { "claude-3-5-sonnet snapshot", "claude-3-5-sonnet-20241022", anth(10, 0, 0, 10), nil,
    10 * 3e-6 + 10 * 1.5e-5 },
}

T.test("cost rules with hand-computed values", function()
  for _, c in ipairs(COST_CASES) do
    T.near(pricing.cost(c[2], c[3], c[4]), c[5], TOL, c[1])
  end
  T.near(pricing.cost("gpt-4o", oai(1000, 400, 200)), 0.004, TOL, "gpt-4o worked example")
  T.near(pricing.cost("o3", oai(100, 0, 1000, 800)), 0.0082, TOL, "o3 worked example")
end)

T.test("estimate: no cache discount assumed", function()
  T.near(pricing.estimate("gpt-4o", 1000, 200), 1000 * 2.5e-6 + 200 * 1e-5, TOL)
  T.near(pricing.estimate("gpt-4o", 1000, 200, { batch = true }), 0.00225, TOL)
  T.near(pricing.estimate("claude-sonnet-4-5", 210000, 0), 210000 * 6e-6, TOL, "tier")
  T.eq(pricing.estimate("no-such-model-est", 10, 10, { quiet = true }), nil)
end)

T.test("usage that cannot be priced gives nil", function()
  T.eq(pricing.cost("gpt-4o", { prompt_tokens = 0 / 0, completion_tokens = 1 }), nil)
  T.eq(pricing.cost("gpt-4o", { prompt_tokens = -1, completion_tokens = 1 }), nil)
  T.eq(pricing.cost("gpt-4o", { prompt_tokens = 1, completion_tokens = math.huge }), nil)
  T.eq(pricing.cost("gpt-4o", {}), 0, "no tokens cost nothing")
  T.err(function() pricing.cost("gpt-4o", nil) end, "usage table expected")
  T.err(function() pricing.cost(42, {}) end, "model name expected")
  T.err(function() pricing.cost("gpt-4o", {}, { cache_discount = 2 }) end, "cache_discount")
end)

-- {asked, resolves to (nil: unknown)}
local NAMES = {
  { "gpt-4o", "gpt-4o" },
  { "openai/gpt-4o", "gpt-4o" },
  { "sim/gpt-4o-mini", "gpt-4o-mini" },
  { "openrouter/openai/gpt-4o", "gpt-4o" },
  { "anthropic/claude-sonnet-4-5", "claude-sonnet-4-5" },
  { "gpt-4o-2024-08-06", "gpt-4o-2024-08-06" },        -- a snapshot in the table: itself
  { "gpt-4o-2031-01-15", "gpt-4o" },                   -- an absent snapshot: its base
  { "sim/gpt-4o-mini-2031-01-15", "gpt-4o-mini" },
  { "claude-sonnet-4-5-20991231", "claude-sonnet-4-5" },
  { "gpt-4-0613", "gpt-4-0613" },
  { "gpt-4-1231", "gpt-4" },
  { "gpt-4o-2031-13-01", nil },                        -- not a date
  { "gpt-4-9999", nil },
  { "no-such-model", nil },
  { "text-embedding-3-large", "text-embedding-3-large" },
}

T.test("name resolution: exact, provider prefix, dated snapshot", function()
  for _, c in ipairs(NAMES) do
    local e, name = pricing.get(c[1])
    T.eq(name, c[2], c[1])
    T.eq(e ~= nil, c[2] ~= nil, c[1] .. " entry")
  end
  local e = pricing.get("gpt-4o")
  T.eq({ e.provider, e.input, e.output, e.cache_read, e.batch_input, e.batch_output,
         e.max_input_tokens, e.max_output_tokens },
       { "openai", 2.5e-6, 1e-5, 1.25e-6, 1.25e-6, 5e-6, 128000, 16384 })
  local c = pricing.get("claude-sonnet-4-5")
  T.eq(c.tiers, { { above = 200000, input = 6e-6, output = 2.25e-5, cache_read = 6e-7,
                    cache_write = 7.5e-6, cache_write_1h = 1.2e-5 } })
  T.eq(pricing.get("gpt-5.4").tiers[1].above, 272000)
  -- an llm.model works as the model argument
  local m = llm.model { name = "gpt-4o", provider = "openai", base_url = "http://127.0.0.1:9", api_key = "x" }
  T.eq(select(2, pricing.get(m)), "gpt-4o")
  local src = pricing.source()
  T.eq(src.synced, "2026-07-24")
  T.ok(src.source:find("f9ff147", 1, true), "source names the commit")
  T.ok(src.count > 150, "a full table")
end)

T.test("set, load and overrides", function()
  pricing.set("my-local-model", { input = 1e-6, output = 2e-6 })
  T.near(pricing.cost("my-local-model", oai(1000, 100, 10)), 1000 * 1e-6 + 10 * 2e-6, TOL,
    "cache read falls back to input")
  T.near(pricing.cost("my-local-model", anth(100, 50, 0, 10)), 150 * 1e-6 + 10 * 2e-6, TOL,
    "cache write falls back to input")
  T.near(pricing.cost("openai/my-local-model", oai(1000, 0, 0)), 1e-3, TOL, "prefix")

  -- a partial override keeps the model's other prices
  pricing.set("gpt-4o", { input = 1e-6 })
  T.near(pricing.cost("gpt-4o", oai(1000, 400, 200)), 600 * 1e-6 + 400 * 1.25e-6 + 200 * 1e-5, TOL)
  T.near(pricing.cost("sim/gpt-4o", oai(1000, 0, 0)), 1e-3, TOL, "sim uses the override too")
  pricing.set("gpt-4o", nil)
  T.near(pricing.cost("gpt-4o", oai(1000, 400, 200)), 0.004, TOL, "override dropped")

  pricing.load {
    ["team-a"] = { input = 1e-7, output = 1e-7, tiers = { { above = 10, input = 1e-6 } } },
    ["team-b"] = { input = 0, output = 0 },
  }
  T.near(pricing.cost("team-a", oai(10, 0, 10)), 20 * 1e-7, TOL, "at the tier")
  T.near(pricing.cost("team-a", oai(11, 0, 10)), 11 * 1e-6 + 10 * 1e-7, TOL, "above the tier")
  T.eq(pricing.cost("team-b", oai(10, 0, 10)), 0, "a free model costs 0, not nil")

  T.err(function() pricing.set("bad", { input = 1 }) end, "needs input and output")
  T.err(function() pricing.set("bad", { input = -1, output = 1 }) end, "finite number")
  T.err(function() pricing.set("bad", { input = 1, output = 1, inptu = 2 }) end, "unknown price field")
  T.err(function() pricing.set("bad", { input = 1, output = 1, tiers = { { input = 1 } } }) end, "above")
  T.err(function() pricing.load("x") end, "table of model = prices")
  pricing.set("my-local-model", nil)
  pricing.set("team-a", nil)
  pricing.set("team-b", nil)
end)

-- ---- the unknown-model warning, in a process of its own ---------------------------------------

local function tmp_script(text)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

local function count_lines(text, pattern)
  local n = 0
  for line in text:gmatch("[^\n]+") do
    if line:find(pattern, 1, true) then n = n + 1 end
  end
  return n
end

local function chat_body(model, usage)
  return cjson.encode {
    id = "chatcmpl-1", object = "chat.completion", model = model,
    choices = { { index = 0, message = { role = "assistant", content = "ok" }, finish_reason = "stop" } },
    usage = usage,
  }
end

local function serve(script)
  local srv = mock.start(script)
  return setmetatable(srv, { __close = function(s) s:stop() end })
end

local function reply(body)
  return "status 200\nheader Content-Type: application/json\nbody " .. body .. "\n"
end

T.test("unknown model: cost nil, exactly one warning per model", function()
  local srv <close> = serve(reply(chat_body("acme-7b", { prompt_tokens = 10, completion_tokens = 5,
    total_tokens = 15 })))
  local path = tmp_script(([[
    local m = llm.model { name = "acme-7b", provider = "openai", base_url = %q, api_key = "k" }
    for i = 1, 3 do
      local r = assert(m:chat "hi")
      assert(r.cost == nil, "cost must be nil, got " .. tostring(r.cost))
      assert(r.usage.prompt_tokens == 10)
    end
    assert(llm.pricing.cost("acme-7b", { prompt_tokens = 1 }) == nil)
    assert(llm.pricing.cost("other-unknown", { prompt_tokens = 1 }) == nil)
    assert(llm.pricing.cost("other-unknown", { prompt_tokens = 1 }) == nil)
    print("cost-ok")
  ]]):format(srv.url .. "/v1"))
  local status, out, err = T.llmrun(path)
  os.remove(path)
  T.eq(status, 0, err)
  T.ok(out:find("cost-ok", 1, true), out)
  T.eq(count_lines(err, 'no price known for model "acme-7b"'), 1, err)
  T.eq(count_lines(err, 'no price known for model "other-unknown"'), 1, err)
  T.eq(count_lines(err, "no price known"), 2, err)
end)

-- ---- resp.cost set by the finish hook -----------------------------------------------------------

T.test("resp.cost on chat, stream-less usage, embeddings", function()
  local embed = cjson.encode { object = "list", model = "text-embedding-3-small",
    data = { { object = "embedding", index = 0, embedding = { 0.1, 0.2 } } },
    usage = { prompt_tokens = 1000, total_tokens = 1000 } }
  local srv <close> = serve(table.concat({
    reply(chat_body("gpt-4o-2024-08-06", { prompt_tokens = 1000, completion_tokens = 200, total_tokens = 1200,
      prompt_tokens_details = { cached_tokens = 400 }, completion_tokens_details = { reasoning_tokens = 50 } })),
    reply(embed),
    reply(chat_body("acme-snapshot-x", { prompt_tokens = 1000, completion_tokens = 0, total_tokens = 1000 })),
  }, "---\n"))
  local function model(name)
    return llm.model { name = name, provider = "openai", base_url = srv.url .. "/v1", api_key = "k" }
  end
  local r = assert(model("gpt-4o"):chat "hello")
  T.near(r.cost, 0.004, TOL, "chat")
  local e = assert(model("text-embedding-3-small"):embed "hello")
  T.near(e.cost, 1000 * 2e-8, TOL, "embedding")
  -- the name asked for is unknown, the model that answered is priced
  pricing.set("acme-snapshot-x", { input = 1e-6, output = 1e-6 })
  local r2 = assert(model("acme-alias"):chat "hello")
  T.near(r2.cost, 1e-3, TOL, "priced by the answering model")
  pricing.set("acme-snapshot-x", nil)
end)

T.test("cache hits cost 0 and record what they saved", function()
  local response = require "llm.response"
  local calls = require "llm.calls"
  local function hit(call)
    return response.new { text = "cached", cached = "exact", model = call.model.name,
      usage = { prompt_tokens = 1000, cached_tokens = 400, completion_tokens = 200 },
      saved = { usage = { prompt_tokens = 1000, cached_tokens = 400, completion_tokens = 200 } } }
  end
  calls.on_before(hit, 5)
  local m = llm.model { name = "gpt-4o", provider = "openai", base_url = "http://127.0.0.1:9", api_key = "k" }
  local ok, r = pcall(m.chat, m, "anything")
  calls.off(hit)
  T.ok(ok, r)
  T.eq(r.cost, 0)
  T.near(r.saved.cost, 0.004, TOL)
end)

-- ---- what-if repricing ---------------------------------------------------------------------------

local RECORDS = {
  { model = "gpt-4o", provider = "openai", prompt_tokens = 1000, cached_tokens = 400,
    completion_tokens = 200, cost = 0.004 },
  -- an OpenAI row logged with zeros in the Anthropic columns
  { model = "gpt-4o", provider = "openai", prompt_tokens = 1000, cached_tokens = 0,
    completion_tokens = 0, input_tokens = 0, cache_creation_tokens = 0, cost = 0.0025 },
  { model = "claude-sonnet-4-5", provider = "anthropic", prompt_tokens = 6000, input_tokens = 1000,
    cache_creation_tokens = 2000, cached_tokens = 3000, completion_tokens = 500, cost = 0.0189 },
  { model = "gpt-4o", provider = "openai", prompt_tokens = 1000, completion_tokens = 200,
    cost = 0, cached = "exact" },                         -- a cache hit
  { model = "gpt-4o", provider = "openai", cost = nil },  -- failed, nothing billed
  { model = "acme-7b", provider = "openai", prompt_tokens = 10, completion_tokens = 10, cost = nil },
}

T.test("reprice: as another model", function()
  local out = assert(pricing.reprice(RECORDS, "gpt-4o-mini"))
  T.eq(out.target, "gpt-4o-mini")
  T.eq(out.calls, 6)
  T.near(out.before, 0.004 + 0.0025 + 0.0189, TOL)
  T.eq(out.before_unknown, 1)
  local mini = (600 * 1.5e-7 + 400 * 7.5e-8 + 200 * 6e-7)    -- row 1
    + 1000 * 1.5e-7                                            -- row 2
    + (1000 * 1.5e-7 + 2000 * 1.5e-7 + 3000 * 7.5e-8 + 500 * 6e-7) -- row 3 (no cache write price)
    + 10 * 1.5e-7 + 10 * 6e-7                                  -- row 6
  T.near(out.after, mini, TOL)
  T.eq(out.after_unknown, 0)
  T.eq(out.models[1].model, "claude-sonnet-4-5", "largest before first")
  T.eq(out.models[2].model, "gpt-4o")
  T.eq(out.models[2].calls, 4)
  T.near(out.models[2].before, 0.0065, TOL)
end)

T.test("reprice: batch, cache discount, custom prices", function()
  local out = assert(pricing.reprice(RECORDS, { batch = true }))
  T.eq(out.target, "batch")
  T.near(out.after, (600 * 1.25e-6 + 400 * 0.625e-6 + 200 * 5e-6) + 1000 * 1.25e-6 + 0.0189 / 2, TOL)
  T.eq(out.after_unknown, 1, "acme-7b stays unknown")

  out = assert(pricing.reprice(RECORDS, { cache_discount = 0.5 }))
  T.near(out.after, (600 * 2.5e-6 + 400 * 1.25e-6 + 200 * 1e-5) + 0.0025
    + (1000 * 3e-6 + 2000 * 3.75e-6 + 3000 * 1.5e-6 + 500 * 1.5e-5), TOL)

  out = assert(pricing.reprice(RECORDS, { input = 1e-6, output = 2e-6 }))
  T.eq(out.target, "custom prices")
  T.near(out.after, (1000 * 1e-6 + 200 * 2e-6) + 1000 * 1e-6 + (6000 * 1e-6 + 500 * 2e-6)
    + (10 * 1e-6 + 10 * 2e-6), TOL)

  out = assert(pricing.reprice(RECORDS, { model = "gpt-4o", batch = true }))
  T.eq(out.target, "gpt-4o, batch")

  local none, err = pricing.reprice(RECORDS, "no-such-model")
  T.eq(none, nil)
  T.eq(err.kind, "unknown_model")
  local empty = assert(pricing.reprice({}, "gpt-4o"))
  T.eq({ empty.calls, empty.before, empty.after, #empty.models }, { 0, 0, 0, 0 })
  T.err(function() pricing.reprice(nil, "gpt-4o") end, "list of call-log rows")
  T.err(function() pricing.reprice({}, 42) end, "model name or table")
end)

T.test("parse_target: command-line words", function()
  local CASES = {
    { "gpt-4o-mini", { model = "gpt-4o-mini" } },
    { "batch", { batch = true } },
    { "cache_discount=0.9", { cache_discount = 0.9 } },
    { "gpt-4o-mini,batch", { model = "gpt-4o-mini", batch = true } },
    { "{input=1e-6, output=2e-6}", { input = 1e-6, output = 2e-6 } },
    { "{model='o3', batch=true}", { model = "o3", batch = true } },
  }
  for _, c in ipairs(CASES) do T.eq(pricing.parse_target(c[1]), c[2], c[1]) end
  T.eq(pricing.parse_target(""), nil)
  T.eq(pricing.parse_target("{os.exit(1)}"), nil, "no globals in a price table")
  T.eq(pricing.parse_target("a,b"), nil)
  T.eq(pricing.parse_target("cache_discount=x"), nil)
end)

-- ---- the generated table ----------------------------------------------------------------------

T.test("the generated table is well formed", function()
  local data = require "llm.pricing_data"
  local n = 0
  local function price(v, what) T.ok(type(v) == "number" and v >= 0 and v < 1, what) end
  for name, e in pairs(data.models) do
    n = n + 1
    T.ok(type(e.provider) == "string" and type(e.mode) == "string", name)
    price(e.input, name .. " input")
    price(e.output, name .. " output")
    for _, k in ipairs { "cache_read", "cache_write", "cache_write_1h", "batch_input", "batch_output" } do
      if e[k] ~= nil then price(e[k], name .. " " .. k) end
    end
    for _, k in ipairs { "max_input_tokens", "max_output_tokens" } do
      T.ok(e[k] == nil or (math.type(e[k]) == "integer" and e[k] > 0), name .. " " .. k)
    end
    local last = 0
    for _, t in ipairs(e.tiers or {}) do
      T.ok(math.type(t.above) == "integer" and t.above > last, name .. " tiers ascending")
      last = t.above
    end
  end
  T.eq(n, pricing.source().count)
  T.ok(data.source:find("2026-07-24", 1, true))
end)

T.test("an OpenAI-style response's cache_write_tokens are priced at the cache-write price", function()
  -- constructed body: no real recording with a non-zero cache_write_tokens was found
  local body = cjson.encode { id = "gen-1", object = "chat.completion", model = "anthropic/claude-sonnet-4-5",
    choices = { { index = 0, message = { role = "assistant", content = "ok" }, finish_reason = "stop" } },
    usage = { prompt_tokens = 1000, completion_tokens = 10, total_tokens = 1010,
              prompt_tokens_details = { cached_tokens = 300, cache_write_tokens = 200 } } }
  local srv <close> = mock.start(mock.script("status 200\nheader Content-Type: application/json\nbody " .. body))
  local m = llm.model { name = "openrouter/anthropic/claude-sonnet-4-5", provider = "openai",
                        base_url = srv.url, api_key = "k" }
  local r = assert(m:chat "hi")
  T.eq({ r.usage.cached_tokens, r.usage.cache_creation_tokens }, { 300, 200 })
  T.near(r.cost, 500 * 3e-6 + 300 * 3e-7 + 200 * 3.75e-6 + 10 * 1.5e-5, TOL)
end)

-- Anthropic's rule (platform.claude.com pricing, "Prompt caching"): a
-- 1-hour cache write costs 2x the base input price. The source table had
-- 6e-6 for Claude Haiku 3 and Opus 3; the generator corrects such rows.
T.test("every Claude row follows the 1-hour cache-write rule", function()
  local data = require "llm.pricing_data"
  local n = 0
  for name, e in pairs(data.models) do
    if name:match("^claude") then
      n = n + 1
      T.near(e.cache_write_1h, 2 * e.input, 1e-15, name .. " cache_write_1h")
      T.ok(e.cache_write, name .. " has a 5-minute write price")
      for _, t in ipairs(e.tiers or {}) do
        T.near(t.cache_write_1h, 2 * (t.input or e.input), 1e-15, name .. " tier cache_write_1h")
      end
    end
  end
  T.ok(n >= 30, "claude rows: " .. n)
  T.near(data.models["claude-3-haiku-20240307"].cache_write_1h, 5e-7, 1e-15)
  T.near(data.models["claude-3-haiku-20240307"].cache_write, 3e-7, 1e-15, "Anthropic's own 5m price kept")
  T.near(data.models["claude-3-opus-20240229"].cache_write_1h, 3e-5, 1e-15)
end)

-- The committed file is what scripts/gen_pricing.lua makes of the
-- reference JSON (where the checkout has ../shared/reference).
T.test("pricing_data.lua is up to date with its generator", function()
  local root = os.getenv("LLMRUN_SOURCE_DIR") or "."
  local json = root .. "/../shared/reference/model_prices_and_context_window.json"
  local f = io.open(json)
  if not f then
    print("SKIP pricing_data.lua freshness: no " .. json)
    return
  end
  f:close()
  local out = os.tmpname()
  local status, _, err = T.llmrun(("%s/scripts/gen_pricing.lua %s %s"):format(root, json, out))
  T.eq(status, 0, err)
  local a = assert(io.open(out)):read("a")
  local b = assert(io.open(root .. "/lualib/llm/pricing_data.lua")):read("a")
  os.remove(out)
  T.ok(a == b, "lualib/llm/pricing_data.lua differs from a fresh scripts/gen_pricing.lua run")
end)
