-- Measures llm.compress and llm.route on the simulator (zero latency
-- profile, so it runs in seconds; the simulator's answers depend only on
-- the request, so every run prints the same numbers).
--   build/llmrun tests/bench/strategies.lua [model ...]     (default gpt-4o gpt-4o-mini)
-- or scripts/bench_strategies.
--
-- 1. Compression on examples/data/context_qa.jsonl (120 questions over 24
--    documents): for each strategy, the context's tokens before/after,
--    the accuracy (exact answer, Wilson 95% interval) and the cost of the
--    120 calls. The simulator answers right only when the fact sentence is
--    in the prompt, so what a strategy drops shows up as accuracy.
-- 2. Cascades gpt-4o-mini -> gpt-4o with a min-logprob threshold, swept
--    on examples/data/arithmetic.jsonl and on the context questions.
local C = llm.compress
local R = llm.route
local cjson = require "cjson"
local wilson = require("llm.route_sweep").wilson

local dir = os.getenv("LLMRUN_SOURCE_DIR") or "."
local function load(name)
  local out = {}
  for line in io.lines(dir .. "/examples/data/" .. name) do out[#out + 1] = cjson.decode(line) end
  return out
end
local qa, arith = load("context_qa.jsonl"), load("arithmetic.jsonl")
-- BENCH_CASES=n keeps the first n cases of each workload (the quick mode)
local limit = math.tointeger(tonumber(os.getenv("BENCH_CASES") or ""))
if limit then
  for _, list in ipairs { qa, arith } do
    for i = #list, limit + 1, -1 do list[i] = nil end
  end
end

local zero = { ["x-sim-profile"] = "zero" }
local models = {}
for _, name in ipairs(arg) do models[#models + 1] = name end
if #models == 0 then models = { "gpt-4o", "gpt-4o-mini" } end

local SYSTEM = "Answer from the context with the value only."
local function qa_prompt(context, question)
  return { messages = { { role = "system", content = SYSTEM },
                        { role = "user", content = context .. "\n\nQuestion: " .. question } } }
end

-- Prompt caching off: with it, a prompt the simulator has seen (the same
-- document asked again, by this strategy or an earlier one) is cheaper,
-- and the costs would depend on the order of the runs. A TTL of 0 still
-- lets requests read in the same loop pass share a prefix, so the calls
-- go one at a time (at zero latency that costs little).
llm.sim.configure { cache_ttl_s = 0 }
local CONCURRENCY = 1

local t_start = llm.now()

-- ---- 1. compression --------------------------------------------------------------------------

local function strategies()
  local list = {
    { "none", function(c) return c.context, C.stats("none", c.context, c.context) end },
    { "whitespace", function(c) return C.whitespace(c.context) end },
    { "filler", function(c) return C.filler(c.context) end },
    { "dedupe sentence", function(c) return C.dedupe(c.context) end },
    { "dedupe paragraph", function(c) return C.dedupe(c.context, { unit = "paragraph" }) end },
    { "json (no JSON here)", function(c) return C.json(c.context) end },
    { "code (blank lines)", function(c) return C.code(c.context) end },
  }
  local clean = C.pipeline { "whitespace", "filler", "dedupe" }
  list[#list + 1] = { "whitespace+filler+dedupe", function(c) return clean(c.context) end }
  for _, side in ipairs { "tail", "head", "middle" } do
    for _, b in ipairs { 1000, 700, 400 } do
      list[#list + 1] = { ("truncate %s %d"):format(side, b),
        function(c) return C.truncate(c.context, { budget = b, side = side }) end }
    end
  end
  for _, b in ipairs { 700, 400, 200, 100, 40 } do
    list[#list + 1] = { ("select budget %d"):format(b),
      function(c) return C.select(c.context, { query = c.question, budget = b }) end }
  end
  for _, r in ipairs { 2, 3, 5 } do
    list[#list + 1] = { ("select ratio %d"):format(r),
      function(c) return C.select(c.context, { query = c.question, ratio = r }) end }
  end
  list[#list + 1] = { "select paragraphs ratio 3",
    function(c) return C.select(c.context, { query = c.question, ratio = 3, unit = "paragraph" }) end }
  local both = C.pipeline { "whitespace", "filler", "dedupe", { "select", budget = 300 } }
  list[#list + 1] = { "clean + select budget 300", function(c) return both(c.context, { query = c.question }) end }
  return list
end

local function pct(v) return ("%5.1f%%"):format(100 * v) end

local function run_strategy(m, fn)
  local before, after, cpu = 0, 0, 0
  local res = llm.map(qa, function(c)
    local t = os.clock()
    local ctx, st = fn(c)
    cpu = cpu + (os.clock() - t)
    before, after = before + st.tokens_before, after + st.tokens_after
    local r, err = m:chat(qa_prompt(ctx, c.question))
    if not r then return { ok = false, err = err } end
    return { ok = r.text == c.answer, kept = ctx:find(c.fact, 1, true) ~= nil, cost = r.cost or 0,
             prompt = r.usage.prompt_tokens }
  end, { concurrency = CONCURRENCY, progress = false })
  local right, kept, cost, prompt = 0, 0, 0, 0
  for _, r in ipairs(res) do
    if r.ok then right = right + 1 end
    if r.kept then kept = kept + 1 end
    cost, prompt = cost + (r.cost or 0), prompt + (r.prompt or 0)
  end
  return { ratio = before / math.max(after, 1), right = right, n = #res, kept = kept, cost = cost,
           prompt = prompt, cpu_ms = cpu * 1000 / #qa }
end

local verdicts = {}
for _, name in ipairs(models) do
  local m = llm.model { name = name, headers = zero }
  print(("== Compression on context_qa.jsonl (%d questions), %s (simulated)"):format(#qa, name))
  print(("%-27s %7s %18s %8s %10s %9s %8s %7s"):format("strategy", "ratio", "accuracy (95% CI)", "vs none",
    "fact kept", "prompt", "cost", "CPU/doc"))
  local base
  for _, s in ipairs(strategies()) do
    local r = run_strategy(m, s[2])
    local acc = r.right / r.n
    local lo, hi = wilson(r.right, r.n)
    base = base or r
    local d = acc - base.right / base.n
    print(("%-27s %6.2fx %6s (%4.1f-%5.1f) %+7.1f %10s %9d %8.4f %5.2fms"):format(s[1], r.ratio, pct(acc),
      100 * lo, 100 * hi, 100 * d, pct(r.kept / r.n), r.prompt, r.cost, r.cpu_ms))
    if s[1]:match("^select") and r.ratio >= 2 then
      verdicts[#verdicts + 1] = { model = name, strategy = s[1], ratio = r.ratio, delta = d }
    end
  end
  print()
end
print("Query-aware selection at >= 2x compression, accuracy within 2 points of the full context:")
local all_ok = true
for _, v in ipairs(verdicts) do
  local ok = v.delta >= -0.02
  all_ok = all_ok and ok
  print(("  %-12s %-27s %5.2fx  %+5.1f points  %s"):format(v.model, v.strategy, v.ratio, 100 * v.delta,
    ok and "ok" or "NOT within 2 points"))
end
print(all_ok and "  all within 2 points" or "  some are NOT within 2 points (budgets below one fact sentence)")
print()

-- ---- 2. cascades -----------------------------------------------------------------------------

local mini = llm.model { name = "gpt-4o-mini", headers = zero }
local big = llm.model { name = "gpt-4o", headers = zero }

local function alone(m, cases, prompt, check)
  local res = llm.map(cases, function(c)
    local r = assert(m:chat(prompt(c)))
    return { ok = check(c, r), cost = r.cost }
  end, { concurrency = CONCURRENCY, progress = false })
  local right, cost = 0, 0
  for _, r in ipairs(res) do
    if r.ok then right = right + 1 end
    cost = cost + r.cost
  end
  return right / #cases, cost
end

local thresholds = { -math.huge, -3, -2, -1.5, -1, -0.7, -0.5, -0.3, -0.2, -0.1, -0.05, 0 }

local function sweep(title, cases, prompt, check)
  print(("== Cascade gpt-4o-mini -> gpt-4o on %s (%d cases), accept = llm.route.min_logprob(threshold)")
    :format(title, #cases))
  local am, cm = alone(mini, cases, prompt, check)
  local ab, cb = alone(big, cases, prompt, check)
  print(("gpt-4o-mini alone: accuracy %s, cost $%.5f;  gpt-4o alone: accuracy %s, cost $%.5f")
    :format(pct(am), cm, pct(ab), cb))
  local sw = R.sweep {
    cases = cases, thresholds = thresholds, prompt = prompt, check = check, concurrency = CONCURRENCY,
    make = function(th) return R.cascade { mini, big, accept = R.min_logprob(th) } end,
  }
  sw:print()
  local ch = sw.chosen
  print(("chosen point vs gpt-4o alone: accuracy %+.1f points, cost %.0f%% of gpt-4o's (%.1fx cheaper)")
    :format(100 * (ch.accuracy - ab), 100 * ch.cost / cb, cb / ch.cost))
  print()
end

sweep("arithmetic.jsonl", arith,
  function(c) return { messages = { { role = "system", content = "Answer with the number only." },
                                    { role = "user", content = c.question } } } end,
  function(c, r) return r.text == c.answer end)

sweep("context_qa.jsonl (full contexts)", qa,
  function(c) return qa_prompt(c.context, c.question) end,
  function(c, r) return r.text == c.answer end)

-- compressed once, before the runs: compressing inside them would add its
-- CPU time to the latencies of the calls waiting meanwhile
local squeeze = C.pipeline { "whitespace", "filler", "dedupe", { "select", budget = 300 } }
local squeezed = {}
for _, c in ipairs(qa) do squeezed[c.id] = (squeeze(c.context, { query = c.question })) end
sweep("context_qa.jsonl (contexts compressed: clean + select 300)", qa,
  function(c) return qa_prompt(squeezed[c.id], c.question) end,
  function(c, r) return r.text == c.answer end)

print(("(%.1f s)"):format(llm.now() - t_start))
