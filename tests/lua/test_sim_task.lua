-- Labelled tasks on the simulator through llm.model (both wires), the
-- judge skill through llm.check.judge, scripted answers (mock_response),
-- the request-field policy (unknown fields, extra = {...}) and the
-- experiment's note on filler answers.
local T = ...
local cjson = require "cjson"

local function model(name)
  return llm.model { name = name, provider = "sim", retry_scale = 0.01,
                     headers = { ["x-sim-profile"] = "zero" } }
end

-- io.stderr's writes while fn runs
local function stderr_of(fn)
  local real, buf = io.stderr, {}
  io.stderr = { write = function(self, ...)
    for _, s in ipairs { ... } do buf[#buf + 1] = tostring(s) end
    return self
  end }
  local ok, err = pcall(fn)
  io.stderr = real
  if not ok then error(err, 0) end
  return table.concat(buf)
end

local LABELS = { "billing", "shipping", "returns", "account" }
local TOPICS = {
  billing = "I was charged twice for the same invoice",
  shipping = "my parcel has not moved from the depot",
  returns = "I want to send back the jacket because it is too small",
  account = "I cannot log in since I changed my e-mail address",
}

local function tickets(n)
  local out = {}
  for i = 1, n do
    local label = LABELS[(i - 1) % #LABELS + 1]
    out[i] = { id = "t" .. i, text = ("Ticket %d from customer %d: %s, please help (ref %d)."):format(
      i, 5000 + i * 7, TOPICS[label], 90000 + i), label = label }
  end
  return out
end

local function with_options(c)
  return "Classify this support ticket as one of: billing, shipping, returns, account. "
    .. "Reply with the label only.\n\n" .. c.text
end
local function bare(c) return "Which team should handle this?\n\n" .. c.text end

local function accuracy(m, cases, prompt)
  local right = 0
  for _, c in ipairs(cases) do
    local r = assert(m:chat(prompt(c)))
    T.eq(r.sim_skill, "task")
    if r.text == c.label then right = right + 1 end
  end
  return right / #cases
end

T.test("a registered task is answered by its rules: options listed beat none, bigger tiers score higher", function()
  local cases = tickets(80)
  local info = llm.sim.task { cases = cases, input = "text", answer = "label", options = LABELS,
                              name = "tickets" }
  T.eq(info, { name = "tickets", cases = 80, kind = "classification", options = LABELS })
  local mini, big = model "gpt-4o-mini", model "o3"
  local mini_listed, mini_bare = accuracy(mini, cases, with_options), accuracy(mini, cases, bare)
  local big_listed = accuracy(big, cases, with_options)
  T.ok(mini_listed > mini_bare + 0.1, ("listed %.2f vs bare %.2f"):format(mini_listed, mini_bare))
  T.ok(big_listed > mini_listed, ("o3 %.2f vs gpt-4o-mini %.2f"):format(big_listed, mini_listed))
  -- a wrong answer is another option, never free text
  for _, c in ipairs(cases) do
    local text = mini:chat(bare(c)).text
    local known = false
    for _, l in ipairs(LABELS) do known = known or text == l end
    T.ok(known, text)
  end
end)

T.test("Claude names (the anthropic wire) and streams answer the task too; the skill survives the cache", function()
  local cases = tickets(12)
  llm.sim.task { cases = cases, input = "text", answer = "label", options = LABELS, name = "tickets" }
  local claude = model "claude-sonnet-4-5"
  local r = assert(claude:chat { user = with_options(cases[1]), max_tokens = 50 })
  T.eq(r.sim_skill, "task")
  T.eq(r.text, cases[1].label)
  local s = model("gpt-4o"):stream(with_options(cases[2]))
  for _ in s do end
  T.eq(s:result().sim_skill, "task")
  local db = T.tmpdb()
  local cached = llm.model { name = "gpt-4o-mini", provider = "sim", headers = { ["x-sim-profile"] = "zero" },
                             cache = llm.cache.open { path = db } }
  assert(cached:chat { user = with_options(cases[3]), temperature = 0 })
  local hit = assert(cached:chat { user = with_options(cases[3]), temperature = 0 })
  T.eq(hit.cached, "exact")
  T.eq(hit.sim_skill, "task")
  cached.cache:close()
  T.remove_db(db)
  T.eq(model("gpt-4o"):chat("Tell me about the weather.").sim_skill, "filler")
end)

T.test("llm.sim.task checks its spec; a task registered before the server starts reaches it", function()
  T.err(function() llm.sim.task { cases = {} } end, "cases must be a non-empty list")
  T.err(function() llm.sim.task { cases = tickets(2), options = { "a", "b" } } end,
    "is not one of the options")
  T.err(function() llm.sim.task { cases = tickets(2), answr = "label" } end, "unknown option 'answr'")
  T.err(function() llm.sim.task { cases = { { text = "x" } } } end, "case 1 has no answer")
  T.err(function() llm.sim.task { cases = tickets(2), difficulty = -1 } end, "difficulty must be")
  llm.sim.stop()
  llm.sim.remove_tasks()
  T.eq(llm.sim.tasks(), {})
  llm.sim.task { cases = { { q = "What colour is the sky over Quixlandia at noon?", a = "violet" } },
                 input = "q", answer = "a", name = "quix" }
  T.eq(llm.sim.tasks(), { { name = "quix", cases = 1 } })
  local right = 0
  for seed = 1, 20 do
    local r = assert(model("gpt-4o"):chat { user = "What colour is the sky over Quixlandia at noon?", seed = seed })
    T.eq(r.sim_skill, "task")
    if r.text == "violet" then right = right + 1 end
  end
  T.ok(right >= 15, right .. " of 20") -- P = 0.92, the seed draws the luck
  T.eq(llm.sim.remove_tasks "quix", 1)
  T.eq(model("gpt-4o"):chat("What colour is the sky over Quixlandia at noon?").sim_skill, "filler")
end)

T.test("the simulator's judge grades a registered task's answers with its tier's accuracy", function()
  local cases = tickets(40)
  llm.sim.task { cases = cases, input = "text", answer = "label", options = LABELS, name = "tickets" }
  local judge = llm.check.judge { model = model "gpt-4o", rubric = "The label is the right team.",
                                  reference = false }
  local agree = 0
  for i, c in ipairs(cases) do
    local given = i % 2 == 0 and c.label or LABELS[i % #LABELS + 1]
    local pass = judge(c, { text = given })
    if pass == (given == c.label) then agree = agree + 1 end
  end
  T.ok(agree >= 34 and agree <= 40, agree .. " of 40 verdicts agree") -- strong tier: 0.94
  T.eq(judge.stats.no_verdict, 0)
  T.ok(judge.stats.calls >= 40)
end)

T.test("an experiment on filler answers says so instead of reporting a bare 0%", function()
  local cases = { { id = 1, question = "Summarise the plot of Hamlet.", answer = "revenge" },
                  { id = 2, question = "Summarise the plot of Macbeth.", answer = "ambition" } }
  local m = model "gpt-4o-mini"
  local cmp
  local err = stderr_of(function()
    cmp = llm.experiment { cases = cases, progress = false, check = llm.check.equals(),
      variants = { plain = function(c) return m:chat(c.question) end } }
  end)
  T.ok(err:find("plain: 2 of 2 answers were filler", 1, true), err)
  local text = cmp:text()
  T.ok(text:find("2 of 2 answers were filler: the simulator has no skill for these prompts; "
    .. "register the task with llm.sim.task or use a real provider", 1, true), text)
  -- registered, the same prompts are answered by the task skill: no note
  llm.sim.task { cases = cases, name = "plots" }
  err = stderr_of(function()
    cmp = llm.experiment { cases = cases, progress = false, check = llm.check.equals(),
      variants = { plain = function(c) return m:chat(c.question) end } }
  end)
  T.ok(not err:find("filler", 1, true), err)
  T.ok(not cmp:text():find("filler", 1, true))
end)

T.test("mock_response gives a fixed answer on both wires; only the simulator takes it", function()
  local r = assert(model("gpt-4o"):chat { user = "hi", mock_response = "Hello from the script." })
  T.eq(r.text, "Hello from the script.")
  T.eq(r.sim_skill, "mock")
  T.eq(r.usage.completion_tokens, llm.tokens.count("Hello from the script."))
  local c = assert(model("claude-haiku-4-5"):chat { user = "hi", mock_response = "Claude, scripted.",
                                                    max_tokens = 20 })
  T.eq(c.text, "Claude, scripted.")
  T.eq(c.sim_skill, "mock")
  -- per model: a header
  local h = llm.model { name = "gpt-4o", provider = "sim", headers = { ["x-sim-profile"] = "zero",
                        ["x-sim-mock-response"] = "From a header." } }
  T.eq(assert(h:chat "anything").text, "From a header.")
  T.err(function() model("gpt-4o"):chat { user = "hi", mock_response = 3 } end, "mock_response must be a string")
  local real = llm.model { name = "gpt-4o", provider = "openai", base_url = "http://127.0.0.1:9/v1", api_key = false }
  T.err(function() real:chat { user = "hi", mock_response = "x" } end,
    "mock_response is answered by the simulator only")
end)

T.test("an unknown field warns once naming the nearest one and is sent; extra = {...} is sent unchecked", function()
  require("llm.params").reset_warnings()
  local m = model "gpt-4o"
  local err = stderr_of(function()
    assert(m:chat { user = "hi", temprature = 0 })
    assert(m:chat { user = "hi again", temprature = 0 })
  end)
  local _, count = err:gsub("request field 'temprature' is unknown", "")
  T.eq(count, 1, err)
  T.ok(err:find("did you mean 'temperature'?", 1, true), err)
  err = stderr_of(function() assert(m:chat { user = "hi", extra = { top_k = 40, temprature = 1 } }) end)
  T.eq(err, "")
  -- the body sent carries the extra fields at its top level
  local body = m:request_body { user = "hi", extra = { top_k = 40 } }
  local text = m.format.chat_request(m.cfg, m.name, body, false).body
  T.eq(cjson.decode(text).top_k, 40)
  T.eq(cjson.decode(text).extra, nil)
  T.err(function() m:chat { user = "hi", extra = 3 } end, "extra must be a table")
  -- Anthropic rejects unknown fields: raised, naming the nearest
  T.err(function() model("claude-haiku-4-5"):chat { user = "hi", max_tokens = 5, max_token = 5 } end,
    "did you mean 'max_tokens'?")
  T.eq(require("llm.params").nearest("tempreture", { "temperature", "top_p" }), "temperature")
  T.eq(require("llm.params").nearest("xyz", { "temperature", "top_p" }), nil)
end)

T.test("a task file for llmrun serve --sim --task", function()
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(cjson.encode { task = { name = "moods", options = { "happy", "sad" }, instructions = { "mood" } } }, "\n")
  f:write(cjson.encode { input = "The sun came out and we danced in the square all evening.", answer = "happy" }, "\n")
  f:write(cjson.encode { input = "The rain did not stop and the train was cancelled again.", answer = "sad",
                         difficulty = 2 }, "\n")
  f:close()
  local spec = assert(require("llm.sim_task").read_file(path))
  os.remove(path)
  T.eq(spec.name, "moods")
  T.eq(#spec.cases, 2)
  T.eq(spec.difficulty, "difficulty")
  local info = llm.sim.task(spec)
  T.eq(info.kind, "classification")
  local r = assert(model("o3"):chat "What mood is this, happy or sad?\nThe sun came out and we danced in the square all evening.")
  T.eq(r.sim_skill, "task")
end)
