-- The three experiments of issue #15, written from the README as a new
-- user would, on the simulator with labelled tasks: each must give a
-- sensible result, for the reason the README gives.
--   1. classification with two prompts over 50 labelled cases: the prompt
--      that names the labels wins, clearly (paired by case);
--   2. the cheapest model within 95% of the best on a labelled task: bigger
--      tiers score higher, and the pick is not a reasoning model priced as
--      if it did not reason;
--   3. a semantic cache on 100 support questions with paraphrases: looser
--      thresholds save more and answer wrongly, only where a near twin's
--      answer differs, and the audit shows it.
local T = ...

local ZERO = { ["x-sim-profile"] = "zero" }
local function model(name) return llm.model { name = name, headers = ZERO } end

local LABELS = { "billing", "shipping", "returns", "account", "technical" }
local tickets = assert(llm.data.jsonl "examples/data/tickets.jsonl")
llm.sim.task { name = "tickets", cases = tickets, input = "text", answer = "label",
               options = LABELS, difficulty = "difficulty" }

local function listed(c)
  return { system = "You route support tickets. Reply with one label: billing, shipping, returns, "
    .. "account or technical.", user = c.text }
end
local function bare(c)
  return { system = "You route support tickets to the right team.", user = c.text }
end

T.test("1. two prompts over 50 labelled cases: naming the labels wins", function()
  local cases = {}
  for i = 1, 50 do cases[i] = tickets[i] end
  local m = model "gpt-4o-mini"
  local cmp = llm.experiment { cases = cases, progress = false, concurrency = 8,
    check = llm.check.equals(),
    variants = { { name = "bare", run = function(c) return m:chat(bare(c)) end },
                 { name = "labels", run = function(c) return m:chat(listed(c)) end } } }
  local q = cmp:metric("quality")
  local a, b = q.values.bare, q.values.labels
  T.ok(b > a + 0.10, ("labels %.2f vs bare %.2f"):format(b, a))
  T.eq(q.vs.labels.verdict, "better")
  T.ok(q.vs.labels.paired and q.vs.labels.lo > 0, "the paired interval is above 0")
  T.ok(not cmp:text():find("filler", 1, true), "every answer came from the task")
  -- the answers of the bare prompt are still labels: wrong, not filler
  for _, row in ipairs(cmp:cases()) do
    local out = row.variants.bare.output
    local ok = false
    for _, l in ipairs(LABELS) do ok = ok or out == l end
    T.ok(ok, out)
  end
end)

-- candidates and whether they reason (their cost includes the reasoning)
local CANDIDATES = {
  { "gpt-4.1-nano", false }, { "gpt-4o-mini", false }, { "claude-haiku-4-5", false },
  { "gpt-4.1", false }, { "gpt-4o", false }, { "claude-sonnet-4-5", false },
  { "o4-mini", true }, { "gpt-5-mini", true }, { "o3", true }, { "gpt-5", true },
}
local TIER = { ["gpt-4.1-nano"] = 1, ["gpt-4o-mini"] = 1, ["claude-haiku-4-5"] = 2, ["gpt-4.1"] = 3,
               ["gpt-4o"] = 3, ["claude-sonnet-4-5"] = 4, ["o4-mini"] = 3, ["gpt-5-mini"] = 3,
               o3 = 4, ["gpt-5"] = 4 }

T.test("2. the cheapest model within 95% of the best on a labelled task", function()
  local variants = {}
  for i, c in ipairs(CANDIDATES) do
    local m = model(c[1])
    variants[i] = { name = c[1], run = function(case) return m:chat(listed(case)) end }
  end
  local cmp = llm.experiment { cases = tickets, variants = variants, progress = false,
                               concurrency = 16, check = llm.check.equals() }
  local acc, cost = cmp:metric("quality").values, cmp:metric("cost").values
  local best, best_acc = nil, -1
  for _, c in ipairs(CANDIDATES) do
    if acc[c[1]] > best_acc then best, best_acc = c[1], acc[c[1]] end
  end
  local pick
  for _, c in ipairs(CANDIDATES) do
    if acc[c[1]] >= 0.95 * best_acc and (not pick or cost[c[1]] < cost[pick]) then pick = c[1] end
  end
  local reasons = {}
  for _, c in ipairs(CANDIDATES) do reasons[c[1]] = c[2] end
  T.ok(not reasons[pick], "picked a reasoning model: " .. pick)
  T.ok(cost[pick] < cost[best] or pick == best)
  -- bigger tiers score higher, on average over their models
  local sum, n = {}, {}
  for _, c in ipairs(CANDIDATES) do
    local t = TIER[c[1]]
    sum[t], n[t] = (sum[t] or 0) + acc[c[1]], (n[t] or 0) + 1
  end
  T.ok(sum[1] / n[1] < sum[2] / n[2] and sum[2] / n[2] < sum[3] / n[3] and sum[3] / n[3] < sum[4] / n[4],
    ("tiers: %.2f %.2f %.2f %.2f"):format(sum[1] / n[1], sum[2] / n[2], sum[3] / n[3], sum[4] / n[4]))
  -- reasoning models cost what they reason: gpt-5 costs more than gpt-4o here
  T.ok(cost["gpt-5"] > cost["gpt-4o"], ("gpt-5 %.6f vs gpt-4o %.6f"):format(cost["gpt-5"], cost["gpt-4o"]))
  io.stderr:write(("  picked %s (%.0f%%, $%.5f per case) vs best %s (%.0f%%, $%.5f)\n"):format(pick,
    acc[pick] * 100, cost[pick] / #tickets, best, best_acc * 100, cost[best] / #tickets))
end)

T.test("3. a semantic cache on 100 support questions: savings, and wrong answers only for near twins", function()
  local faq = assert(llm.data.jsonl "examples/data/support_faq.jsonl")
  -- paraphrases share their original's luck (group): a model answers them alike
  llm.sim.task { name = "faq", cases = faq, input = "question", answer = "answer", group = "group" }
  local answer_of = {}
  for _, c in ipairs(faq) do answer_of[c.question] = c.answer end
  local embed = model "text-embedding-3-small"
  local function ask(m, c)
    return m:chat { system = "You are the support assistant. Answer in one sentence.", user = c.question,
                    temperature = 0 }
  end
  local hits, db = {}, T.tmpdb()
  local function cached(threshold)
    local cache = llm.cache.semantic { embed = embed, threshold = threshold, path = db,
                                       namespace = "faq-" .. threshold }
    local m = model("gpt-4o"):with_cache(cache)
    hits[threshold] = {}
    return function(c)
      local r = ask(m, c)
      if r and r.cached == "semantic" then hits[threshold][c.id] = r.matched_prompt end
      return r
    end
  end
  local plain = model "gpt-4o"
  local cmp = llm.experiment { cases = faq, progress = false, mode = "blocks",
    check = llm.check.equals(),
    variants = { { name = "no cache", run = function(c) return ask(plain, c) end },
                 { name = "0.85", run = cached(0.85) }, { name = "0.75", run = cached(0.75) },
                 { name = "0.65", run = cached(0.65) } } }
  local hit, acc, cost = cmp:metric("hit_rate").values, cmp:metric("quality").values, cmp:metric("cost").values
  for _, v in ipairs { "no cache", "0.85", "0.75", "0.65" } do
    io.stderr:write(("  %-8s from cache %3.0f%%, right %3.0f%%, cost $%.6f\n"):format(v, hit[v] * 100,
      acc[v] * 100, cost[v]))
  end
  T.ok(hit["0.65"] > hit["0.75"] and hit["0.75"] > hit["0.85"], ("hit rates %.2f %.2f %.2f"):format(
    hit["0.85"], hit["0.75"], hit["0.65"]))
  T.ok(cost["0.65"] < cost["no cache"])
  T.ok(acc["0.65"] < acc["no cache"], "the loosest threshold answers some questions wrongly")
  -- every hit that changed the answer matched a question whose answer differs
  local by_case = {}
  for _, row in ipairs(cmp:cases()) do by_case[row.id] = row end
  local wrong_hits, para_hits = 0, 0
  for threshold, list in pairs(hits) do
    for id, matched in pairs(list) do
      local row = by_case[id]
      local out = row.variants[tostring(threshold)].output
      if out ~= row.variants["no cache"].output then
        wrong_hits = wrong_hits + 1
        T.ok(answer_of[matched] ~= row.expected, id .. " matched " .. matched)
      else
        para_hits = para_hits + 1
      end
    end
  end
  T.ok(wrong_hits > 0 and para_hits > 0, wrong_hits .. " wrong, " .. para_hits .. " right hits")
  -- the audit sees it before anything is served: a threshold no prompt
  -- reaches, and every similar pair above the floor compared for free
  local audit = llm.cache.semantic { embed = embed, threshold = 0.999, path = db,
    namespace = "faq-audit", audit = { rate = 1, floor = 0.5 } }
  local m = model("gpt-4o"):with_cache(audit)
  for _, c in ipairs(faq) do assert(ask(m, c)) end
  local THRESHOLDS = { 0.6, 0.7, 0.8, 0.9 }
  local rows = assert(audit:audit_table(THRESHOLDS))
  local at = {}
  for _, r in ipairs(rows) do at[r.threshold] = r end
  T.ok(at[0.6].false_hit_rate > at[0.8].false_hit_rate, audit:format_audit(THRESHOLDS))
  T.ok(at[0.6].differed > 0)
  io.stderr:write(audit:format_audit(THRESHOLDS), "\n")
  audit:close()
  T.remove_db(db)
end)
