-- Day 4: performance metrics and a before/after comparison, the seed's
-- PerformanceTracker done right.
--
-- The seed's tracker kept lists of latencies, tokens and costs and reported
-- their averages. What it could not tell you: the tail (p95, not the mean,
-- is what users wait for), time to first token on its own, failures and
-- cache hits kept apart from real model latency, a cost that is "unknown"
-- rather than a silent 0, the quality the speed-up cost, and whether a
-- difference is real or noise. Here trackers collect every call by tag,
-- and llm.report.compare puts latency, TTFT, tokens, cost and accuracy side
-- by side, each with a bootstrap confidence interval and a verdict.
--
-- The task: 40 arithmetic questions (examples/data/arithmetic.jsonl).
--   baseline:  one question after another, the strong model (gpt-4o)
--   optimized: 8 at a time on one event loop, the small model (gpt-4o-mini)
-- With no API key set, calls go to the built-in simulator (its models'
-- latencies and arithmetic accuracy differ like the real ones), and the
-- report says "simulated" at the top.
--
--   llmrun examples/metrics.lua [REPORT.html] [N]
local cjson = require "cjson"

local html_path = arg and arg[1] or "metrics_report.html"
local n = tonumber(arg and arg[2]) or 40
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."

-- ---- the cases ------------------------------------------------------------------
local cases = {}
for line in io.lines(here .. "/data/arithmetic.jsonl") do
  if #cases >= n then break end
  cases[#cases + 1] = cjson.decode(line)
end

local strong = llm.model "gpt-4o"
local small = llm.model "gpt-4o-mini"

-- One question, streamed so that the time to the first token is measured;
-- the tag and case id go to the trackers and to the call log.
local function ask(model, case, tag)
  return model:stream({
    system = "Answer with the number only.", user = case.question,
    max_tokens = 16, temperature = 0,
  }, { tag = tag, case = case.id, on_delta = function() end })
end

local function correct(r, case)
  return r ~= nil and (r.text or ""):match("%-?%d+") == case.answer
end

-- ---- measure ---------------------------------------------------------------------
local baseline = llm.metrics.tracker("baseline", { tag = "baseline" })
local optimized = llm.metrics.tracker("optimized", { tag = "optimized" })

io.stderr:write(("%d questions, baseline: sequential on %s\n"):format(#cases, strong.name))
local t0 = llm.now()
for _, case in ipairs(cases) do
  baseline:score(correct(ask(strong, case, "baseline"), case), case.id)
end
local baseline_wall = llm.now() - t0

io.stderr:write(("optimized: 8 at a time on %s\n"):format(small.name))
t0 = llm.now()
llm.map(cases, function(case)
  optimized:score(correct(ask(small, case, "optimized"), case), case.id)
end, { concurrency = 8 })
local optimized_wall = llm.now() - t0
baseline:stop()
optimized:stop()

-- ---- what a tracker knows ------------------------------------------------------------
local s = optimized:stats()
print(("optimized, in numbers: %d calls, %d failed; latency p50 %.0f ms, p95 %.0f ms; "
  .. "TTFT p50 %.0f ms; %d tokens; cost %s; accuracy %.0f%%\n"):format(
  s.calls, s.errors, s.latency.p50 or 0, s.latency.p95 or 0, s.ttft.p50 or 0, s.tokens.total,
  s.cost and ("$%.5f"):format(s.cost) or "unknown (no prices)",
  (s.quality and s.quality.mean or 0) * 100))

-- ---- compare -----------------------------------------------------------------------------
local report = llm.report.compare {
  title = "Day 4: baseline vs optimized (arithmetic, " .. #cases .. " questions)",
  variants = {
    { name = "baseline", tracker = baseline, wall_s = baseline_wall },
    { name = "optimized", tracker = optimized, wall_s = optimized_wall },
  },
}
report:print()
local ok, err = report:html(html_path)
if not ok then
  io.stderr:write("cannot write ", html_path, ": ", tostring(err), "\n")
  llm.exit(1)
end
print("\nHTML report: " .. html_path)
print("The calls are in the call log too: llmrun report " .. llm.log.run_id())
