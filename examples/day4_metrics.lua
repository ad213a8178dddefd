-- Day 4: performance metrics and a before/after comparison, the seed's
-- PerformanceTracker done right.
--
-- The seed's tracker kept lists of latencies, tokens and costs and reported
-- their averages. What it could not tell you: the tail (p95, not the mean,
-- is what users wait for), time to first token on its own, failures and
-- cache hits kept apart from real model latency, a cost that is "unknown"
-- rather than a silent 0, the quality the speed-up cost, and whether a
-- difference is real or noise.
--
-- Part 1 is the seed's exercise with llm.metrics.tracker. Part 2 is the
-- before/after comparison with llm.experiment: latency, TTFT, tokens, cost,
-- accuracy and wall time side by side, each with a bootstrap confidence
-- interval and a verdict, as text, Markdown and HTML.
--
-- The task: 40 arithmetic questions (examples/data/arithmetic.jsonl).
--   baseline:  one question after another, the strong model (gpt-4o)
--   optimized: 8 at a time on one event loop, the small model (gpt-4o-mini)
-- With no API key set, calls go to the built-in simulator (its models'
-- latencies and arithmetic accuracy differ like the real ones), and the
-- report says "simulated" at the top.
--
--   llmrun examples/day4_metrics.lua [REPORT.html] [N]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local html_path = arg and arg[1] or "day4_report.html"
local n = tonumber(arg and arg[2]) or 40

local cases = assert(llm.data.jsonl(here .. "/data/arithmetic.jsonl", { limit = n }))
local strong = llm.model "gpt-4o"
local small = llm.model "gpt-4o-mini"

-- One question, streamed so that the time to the first token is measured.
local function ask(model, case)
  return model:stream({
    system = "Answer with the number only.", user = case.question,
    max_tokens = 16, temperature = 0,
  }, { on_delta = function() end })
end

local function correct(case, r)
  return r ~= nil and (r.text or ""):match("%-?%d+") == case.answer
end

-- ---- 1. the seed's tracker -----------------------------------------------------------
-- A tracker collects every call that finishes while it runs (from any task).
local tracker = llm.metrics.tracker("five questions")
tracker:run(function()
  for i = 1, 5 do tracker:score(correct(cases[i], ask(small, cases[i])), cases[i].id) end
end)
local s = tracker:stats()
print(("1. A tracker over 5 calls: %d ok, %d failed; latency mean %.0f ms, p50 %.0f ms, p95 %.0f ms; "
  .. "TTFT p50 %.0f ms;\n   %d tokens; cost %s; accuracy %.0f%% [%.0f%%, %.0f%%]\n"):format(
  s.ok, s.errors, s.latency.mean or 0, s.latency.p50 or 0, s.latency.p95 or 0, s.ttft.p50 or 0,
  s.tokens.total, s.cost and ("$%.6f"):format(s.cost) or "unknown (no prices)",
  s.quality.mean * 100, s.quality.lo * 100, s.quality.hi * 100))

-- ---- 2. before/after -------------------------------------------------------------------------
io.stderr:write(("2. %d questions: baseline sequential on %s, optimized 8 at a time on %s\n"):format(
  #cases, strong.name, small.name))
local cmp = llm.experiment {
  title = ("Day 4: baseline vs optimized (arithmetic, %d questions)"):format(#cases),
  cases = cases,
  mode = "blocks", batches = 2, -- each variant alone, so wall times are its own
  variants = {
    { name = "baseline", run = function(case) return ask(strong, case) end },
    { name = "optimized", run = function(case) return ask(small, case) end, concurrency = 8 },
  },
  check = correct,
}
cmp:print()

-- The numbers behind the table are there for scripts and CI gates too.
local acc, cost, wall = cmp:metric("quality"), cmp:metric("cost"), cmp:metric("wall")
print(("\nIn one line: %.1fx faster (wall), %.1fx cheaper, accuracy %+.1f points [%+.1f, %+.1f]: %s."):format(
  1 / wall.vs.optimized.effect, 1 / cost.vs.optimized.effect, acc.vs.optimized.effect * 100,
  (acc.vs.optimized.lo or 0) * 100, (acc.vs.optimized.hi or 0) * 100,
  acc.vs.optimized.verdict == "worse" and "the small model's accuracy loss is real, not noise"
    or "no accuracy difference shows at this sample size"))

local written, err = cmp:html(html_path) -- in a dry run: a .dry-run.html name
if not written then
  io.stderr:write("cannot write ", html_path, ": ", tostring(err), "\n")
  llm.exit(1)
end
local md_path = written:gsub("%.html?$", "") .. ".md"
local f = io.open(md_path, "w")
if f then f:write(cmp:markdown()) f:close() end
print("\nHTML report: " .. written .. "   Markdown: " .. md_path)
print("The calls are in the call log too: llmrun report " .. llm.log.run_id())
