-- Your own task, offline: a labelled data set, two prompts compared, then
-- the cheapest model within 95% of the best, all on the simulator.
--
-- With no API key the simulator answers, and it knows nothing about your
-- task until you register it: llm.sim.task gives it the cases and their
-- right answers. It then answers a prompt that holds a registered case
-- right with a probability set by its rules (the model's tier, the case's
-- difficulty, whether the prompt names the labels, few-shot examples, how
-- much of the case is in the prompt) and otherwise with another label.
-- README "The simulator's model" has the rules: they are the simulator's,
-- not real models'. With OPENAI_API_KEY set the same script measures the
-- real models (llm.sim.task then changes nothing).
--
--   llmrun examples/own_task.lua [REPORT.html] [N]
local html_path = arg and arg[1]
local n = tonumber(arg and arg[2]) or 100

local LABELS = { "billing", "shipping", "returns", "account", "technical" }
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local cases = assert(llm.data.jsonl(here .. "/data/tickets.jsonl"))
for i = #cases, n + 1, -1 do cases[i] = nil end

local task = llm.sim.task { name = "tickets", cases = cases, input = "text", answer = "label",
                            options = LABELS, difficulty = "difficulty" }
print(("Registered %d %s cases with the simulator (task %q).\n"):format(task.cases, task.kind, task.name))

-- ---- 1. which prompt? ------------------------------------------------------------------
local function named(c)
  return { system = "You route support tickets. Reply with one label: billing, shipping, returns, "
    .. "account or technical.", user = c.text }
end
local function plain(c)
  return { system = "You route support tickets to the right team.", user = c.text }
end
local mini = llm.model "gpt-4o-mini"
local prompts = llm.experiment {
  title = "Two prompts, gpt-4o-mini: labels named or not", cases = cases, concurrency = 16,
  check = llm.check.equals(),
  variants = { { name = "plain", run = function(c) return mini:chat(plain(c)) end },
               { name = "labels named", run = function(c) return mini:chat(named(c)) end } },
}
print(prompts:summary())
local q = prompts:metric("quality")
local d = q.vs["labels named"]
print(("Naming the labels: %.0f%% right instead of %.0f%% (%+.0f points, 95%% interval %+.0f to %+.0f, "
  .. "paired by ticket): %s.\n"):format(q.values["labels named"] * 100, q.values.plain * 100, d.effect * 100,
  (d.lo or 0) * 100, (d.hi or 0) * 100, d.verdict))

-- ---- 2. which model? ------------------------------------------------------------------
local CANDIDATES = { "gpt-4.1-nano", "gpt-4o-mini", "claude-haiku-4-5", "gpt-4.1", "gpt-4o",
                     "claude-sonnet-4-5", "o4-mini", "gpt-5-mini", "gpt-5" }
local variants = {}
for i, name in ipairs(CANDIDATES) do
  local m = llm.model(name)
  variants[i] = { name = name, run = function(c) return m:chat(named(c)) end }
end
local models = llm.experiment { title = "Which model routes tickets best for the money?", cases = cases,
  variants = variants, concurrency = 100, check = llm.check.equals() }
local acc, cost = models:metric("quality").values, models:metric("cost").values
local best
for _, name in ipairs(CANDIDATES) do
  if not best or acc[name] > acc[best] then best = name end
end
local pick
for _, name in ipairs(CANDIDATES) do
  if acc[name] >= 0.95 * acc[best] and (not pick or cost[name] < cost[pick]) then pick = name end
end
print(("%-18s %9s %14s"):format("model", "accuracy", "cost per 1,000"))
for _, name in ipairs(CANDIDATES) do
  print(("%-18s %8.0f%% %14s%s"):format(name, acc[name] * 100, ("$%.4f"):format(cost[name] / #cases * 1000),
    name == pick and "   <- the cheapest within 95% of the best" or name == best and "   <- the best" or ""))
end
-- the reasoning models' cost, for the last line
local dearest, reasoning_best = nil, 0
for _, name in ipairs { "o4-mini", "gpt-5-mini", "gpt-5" } do
  if not dearest or cost[name] > cost[dearest] then dearest = name end
  reasoning_best = math.max(reasoning_best, acc[name])
end
local against = pick == best and "the most accurate of all"
  or ("within 95%% of the best (%s, %.0f%%)"):format(best, acc[best] * 100)
print(("\nIn one line: %s is right on %.0f%% of the tickets at $%.4f per 1,000, %s; the reasoning "
  .. "models reach %.0f%% at up to $%.2f per 1,000 (%s: %.0fx), because their hidden reasoning "
  .. "tokens are billed."):format(pick, acc[pick] * 100, cost[pick] / #cases * 1000, against,
  reasoning_best * 100, cost[dearest] / #cases * 1000, dearest, cost[dearest] / cost[pick]))
if html_path then print("report: " .. models:html(html_path)) end
