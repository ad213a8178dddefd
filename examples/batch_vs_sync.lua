-- Batch vs sync: the same experiment through the synchronous API and
-- through the Batch API, side by side.
--
-- A Batch API (OpenAI's, Anthropic's Message Batches) takes a file of
-- requests and answers all of them later, within 24 hours, at half the
-- price. For an evaluation nobody waits on, that halves the bill; the
-- price is the wait. llm.experiment measures both: the batch arm's
-- variant is the same function as the sync arm's (its m:chat calls are
-- collected and sent as one batch, because of `batch = true`), so the
-- report compares cost, wall time and quality on the same cases.
--
-- With no API key set, both arms run on the built-in simulator, whose
-- Batch API turns a batch around in 2 s (real ones take minutes to
-- hours: llm.sim.configure{batch_turnaround_s = ...} to see the trade-off
-- at another scale). A killed run resumes its batch when rerun (see the
-- README, "Batch APIs").
--
--   llmrun examples/batch_vs_sync.lua [REPORT.html] [MODEL] [N]
local html_path = arg and arg[1]
local model = llm.model(arg and arg[2] or "gpt-4o-mini")
local n = tonumber(arg and arg[3]) or 48

local cases = assert(llm.data.jsonl((os.getenv("LLMRUN_SOURCE_DIR") or ".") .. "/examples/data/arithmetic.jsonl"))
for i = #cases, n + 1, -1 do cases[i] = nil end

local function ask(case)
  return model:chat { user = case.question .. " Answer with the number only.", max_tokens = 16 }
end

print(("%d arithmetic questions to %s (%s%s): 8 at a time, then as one batch\n"):format(#cases,
  model.name, model.provider, model.simulated and ", simulated" or ""))
local cmp = llm.experiment {
  title = "Batch vs sync: the same questions, two APIs",
  cases = cases, mode = "blocks",
  variants = {
    { name = "sync", run = ask, concurrency = 8 },
    { name = "batch", run = ask, batch = true },
  },
  check = llm.check.numeric { abs = 0 },
}
cmp:print()

local cost, wall, q = cmp:metric("cost"), cmp:metric("wall"), cmp:metric("quality")
print(("In one line: the batch arm cost %.2fx the sync arm ($%.6f vs $%.6f), took %.1f s instead of %.1f s, "
  .. "and answered %.1f%% right vs %.1f%%.")
  :format(cost.values.batch / cost.values.sync, cost.values.batch, cost.values.sync,
    wall.values.batch, wall.values.sync, q.values.batch * 100, q.values.sync * 100))
print("Use the batch arm when nobody waits for the answers (evaluations, backfills, labelling); "
  .. "the sync arm when someone does.")
if html_path then print("report: " .. cmp:html(html_path)) end
