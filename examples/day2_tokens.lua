-- Day 2: token cost. Two levers, measured.
--
-- 1. Fewer tokens per prompt (llm.compress). Three prompts of the kinds
--    that waste tokens in practice, before and after: a wordy instruction
--    (white space and filler phrases), a pretty-printed JSON payload
--    (minified), and a long document for one question (query-aware
--    selection: the sentences that matter to the question, in order).
--    Tokens and cost per 1,000 calls are counted with the model's real
--    tokenizer and price; for the document, whether the answers stay right
--    is measured too (a compression that drops the fact costs accuracy).
-- 2. A cheaper model. The seed compared GPT-3.5-turbo with GPT-4; today's
--    pair is gpt-4o-mini and gpt-4o (about 16x apart in price). The same
--    arithmetic questions go to both: cost, and accuracy by difficulty,
--    give "when to use each" as a rule read off the numbers.
--
--   llmrun examples/day2_tokens.lua [REPORT.html]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local html_path = arg and arg[1]
local cjson = require "cjson"

local PRICED = "gpt-4o" -- the model whose tokenizer and price the table uses
local function tokens(text) return llm.tokens.count(text, PRICED) end
local function per_1k(prompt_tokens) return llm.pricing.estimate(PRICED, prompt_tokens, 50) * 1000 end

-- ---- 1. three prompts ------------------------------------------------------------------
local wordy = [[
Hello!   I would like you to please help me with something, if that is okay.

It is important to note that   I am writing a reply to a customer who has written to us about a
late delivery.    Basically, what I would really like is for you to write a short reply that
apologises for the delay and, needless to say, tells them that the parcel will arrive on Friday.


As a matter of fact, please make sure that the reply is polite, and in order to keep it short,
please keep it to three sentences at most.   Thank you so much in advance for your help with this!
]]

local orders = {}
for i = 1, 12 do
  orders[i] = { order_id = ("A-%04d"):format(1000 + i * 37), customer = { name = "Customer " .. i,
    country = i % 3 == 0 and "PT" or "DE" }, items = { { sku = "SKU-" .. i, qty = i % 4 + 1,
    price = 9.5 * i } }, status = i % 5 == 0 and "late" or "shipped" }
end
local pretty = "Which orders are late? Reply with their ids.\n\n"
  .. cjson.encode(orders):gsub("([{,])", "%1\n  "):gsub("}", "\n}")

local qa = assert(llm.data.jsonl(here .. "/data/context_qa.jsonl", { limit = 48 }))
local function qa_prompt(context, case)
  return context .. "\n\nQuestion: " .. case.question
end

local prompts = {
  { name = "wordy instruction", text = wordy,
    -- the built-in filler list, plus this team's own boilerplate openers
    compress = llm.compress.pipeline { "whitespace", { "filler", phrases = { "hello!", "as a matter of fact," } } } },
  { name = "pretty JSON payload", text = pretty,
    compress = llm.compress.pipeline { "whitespace", "json" } },
  { name = "document + question", text = qa_prompt(qa[1].context, qa[1]),
    compress = function(_) return qa_prompt(llm.compress.select(qa[1].context,
      { query = qa[1].question, ratio = 3 }), qa[1]) end },
}

print("1. Three prompts, before and after compression (tokens of " .. PRICED .. ", cost per 1,000 calls)\n")
print(("%-22s %8s %8s %7s %12s %12s"):format("prompt", "before", "after", "ratio", "$/1k before", "$/1k after"))
for _, p in ipairs(prompts) do
  local after = p.compress(p.text)
  local b, a = tokens(p.text), tokens(after)
  print(("%-22s %8d %8d %6.1fx %12s %12s"):format(p.name, b, a, b / a, ("$%.3f"):format(per_1k(b)),
    ("$%.3f"):format(per_1k(a))))
  p.after = after
end
print("\n   the wordy instruction, compressed:\n   " .. prompts[1].after:gsub("\n", "\n   "))

-- Does the document still answer the question? 48 questions, full vs selected.
local small = llm.model "gpt-4o-mini"
local SYSTEM = "Answer from the context with the value only."
local sel = llm.experiment {
  title = "Day 2: query-aware selection (48 questions over long documents)",
  cases = qa, concurrency = 8,
  variants = {
    { name = "full document", run = function(case)
        return small:chat { system = SYSTEM, user = qa_prompt(case.context, case), max_tokens = 20 } end },
    { name = "selected (3x)", run = function(case)
        local ctx = llm.compress.select(case.context, { query = case.question, ratio = 3 })
        return small:chat { system = SYSTEM, user = qa_prompt(ctx, case), max_tokens = 20 } end },
  },
  check = function(case, r) return r.text == case.answer end,
}
print()
io.write(sel:summary { "quality", "tokens", "cost", "latency_p50" })
local q, t = sel:metric("quality"), sel:metric("tokens")
print(("Selection keeps %.0f%% of the tokens (%.1fx fewer) at %+.1f points of accuracy [%+.1f, %+.1f]: %s.\n")
  :format(t.vs["selected (3x)"].effect * 100, 1 / t.vs["selected (3x)"].effect, q.vs["selected (3x)"].effect * 100,
    (q.vs["selected (3x)"].lo or 0) * 100, (q.vs["selected (3x)"].hi or 0) * 100, q.vs["selected (3x)"].verdict))

-- ---- 2. model selection -------------------------------------------------------------------
local arith = assert(llm.data.jsonl(here .. "/data/arithmetic.jsonl", { limit = 120 }))
local strong = llm.model "gpt-4o"
local function ask(model)
  return function(case)
    return model:chat { system = "Answer with the number only.", user = case.question, max_tokens = 16 }
  end
end
print(("2. %d arithmetic questions (difficulty 1-4) on %s and %s\n"):format(#arith, small.name, strong.name))
local pick = llm.experiment {
  title = "Day 2: a cheap and a strong model on the same questions",
  cases = arith, concurrency = 16,
  variants = { { name = strong.name, run = ask(strong) }, { name = small.name, run = ask(small) } },
  check = function(case, r) return (r.text or ""):match("%-?%d+") == case.answer end,
}
io.write(pick:summary { "quality", "cost", "latency_p50" })

-- accuracy by difficulty, from the per-case results
local difficulty = {}
for _, c in ipairs(arith) do difficulty[c.id] = c.difficulty end
local by = {}
for _, name in ipairs { strong.name, small.name } do
  by[name] = {}
  for _, r in ipairs(pick.variants[name].results) do
    local d = difficulty[r.case]
    local cell = by[name][d] or { n = 0, right = 0 }
    cell.n, cell.right = cell.n + 1, cell.right + (r.score or 0)
    by[name][d] = cell
  end
end
print(("\n%-11s %10s %12s %8s"):format("difficulty", strong.name, small.name, "cases"))
local cheap_up_to = 0
for d = 1, 4 do
  local s, m = by[strong.name][d], by[small.name][d]
  if s and m then
    local as, am = s.right / s.n, m.right / m.n
    print(("%-11d %9.0f%% %11.0f%% %8d"):format(d, as * 100, am * 100, s.n))
    -- the cheap model is good enough where it stays within 5 points of the strong one
    if am >= as - 0.05 and cheap_up_to == d - 1 then cheap_up_to = d end
  end
end
local cost, acc = pick:metric("cost"), pick:metric("quality")
local n = #arith
local cs, cm = cost.values[strong.name] / n, cost.values[small.name] / n
local as, am = acc.values[strong.name], acc.values[small.name]
print(("\nWhen to use each, from these numbers:\n"
  .. "  %s costs %.0fx less ($%.3f vs $%.3f per 1,000 questions) and gets %.0f%% right vs %.0f%%.")
  :format(small.name, cs / cm, cm * 1000, cs * 1000, am * 100, as * 100))
if as > am then
  -- paying (cs - cm) more per question avoids (as - am) wrong answers per question
  print(("  %s pays for itself when one wrong answer costs you more than $%.5f "
    .. "(the price difference per question / the accuracy difference)."):format(strong.name, (cs - cm) / (as - am)))
end
print(cheap_up_to >= 1 and ("  By difficulty: %s stays within 5 points up to difficulty %d; route harder ones to %s."):format(
  small.name, cheap_up_to, strong.name)
  or ("  By difficulty: %s is more than 5 points behind at every level, so sort by stakes, not difficulty: "
    .. "%s for drafts and bulk work a person checks, %s where answers are used unchecked, or a "
    .. "cascade that escalates the answers the small model is unsure of (examples/before_after.lua)."):format(
    small.name, small.name, strong.name))

if html_path then
  local written = assert(pick:html(html_path)) -- a .dry-run.html name in a dry run
  print("\nHTML report (model selection): " .. written)
end
