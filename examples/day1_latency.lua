-- Day 1: latency. Two ways to make users wait less, measured.
--
-- 1. Parallel calls. The seed did it with asyncio.gather; here llm.map runs
--    calls as tasks on one event loop. The same 24 questions go out one
--    after another, then 4 and 8 at a time (llm.experiment in "blocks"
--    mode: each variant runs alone, at its own concurrency, so its wall
--    time is its own; 3 batches of 8 give the wall times an interval, so
--    "8 at a time" sends each batch all at once).
-- 2. Streaming. The whole answer takes as long either way, but with a
--    stream the first words show up after the time to first token (TTFT).
--    Both variants run on the same prompts, interleaved.
--
-- With no API key set, calls go to the built-in simulator, whose models
-- answer with the latency profiles of the real ones (lualib/llm/sim_profiles.lua).
--
--   llmrun examples/day1_latency.lua [REPORT.html] [MODEL]
local html_path = arg and arg[1]
local model = llm.model(arg and arg[2] or "gpt-4o-mini")

local function pct(x) return ("%.0f%%"):format(x * 100) end

-- ---- 1. sequential vs parallel ---------------------------------------------------------
local questions = {}
for i = 1, 24 do
  questions[i] = { id = "q" .. i, text = ("In one sentence: why is the number %d interesting?"):format(i * 7) }
end

local function ask(case)
  return model:chat { user = case.text, max_tokens = 20 }
end

print(("1. %d questions to %s (%s%s): one after another, then at once\n"):format(#questions,
  model.name, model.provider, model.simulated and ", simulated" or ""))
local par = llm.experiment {
  title = "Day 1: sequential vs parallel calls",
  cases = questions, mode = "blocks", batches = 3,
  variants = {
    { name = "sequential", run = ask },
    { name = "4 at a time", run = ask, concurrency = 4 },
    { name = "8 at a time", run = ask, concurrency = 8 },
  },
}
local wall, p50 = par:metric("wall"), par:metric("latency_p50")
print(("%-14s  %-22s  %-18s  %s"):format("variant", "wall time [95% CI]", "speed-up [95% CI]", "latency p50"))
for _, name in ipairs { "sequential", "4 at a time", "8 at a time" } do
  local vs, ci = wall.vs[name], wall.ci[name]
  local w = ci and ("%.2f s [%.2f, %.2f]"):format(wall.values[name], ci.lo, ci.hi) or ("%.2f s"):format(wall.values[name])
  local up = vs and vs.lo and ("%.1fx [%.1f, %.1f]"):format(1 / vs.effect, 1 / vs.hi, 1 / vs.lo) or "1.0x (baseline)"
  print(("%-14s  %-22s  %-18s  %.0f ms"):format(name, w, up, p50.values[name]))
end
print(("\nEach call still takes ~%.0f ms; 8 at a time, a batch of 8 takes about one call's time "
  .. "(%.2f s for all 24). Per-call latency does not improve: waiting in parallel does."):format(
  p50.values["8 at a time"], wall.values["8 at a time"]))

-- ---- 2. streaming: time to first token vs the whole answer ----------------------------------
local prompts = {
  "Tell a short story about a lighthouse keeper.", "Explain what a hash table is.",
  "Describe how bread rises.", "Write a short poem about autumn rain.",
  "Explain how a bicycle stays upright.", "Describe the water cycle.",
  "Tell a short story about a lost umbrella.", "Explain why the sky is blue.",
}
local cases = {}
for i, p in ipairs(prompts) do cases[i] = { id = "p" .. i, text = p } end
local req = function(case) return { user = case.text, max_tokens = 150 } end

print(("\n2. %d longer answers, whole (chat) vs streamed, interleaved\n"):format(#cases))
io.write("   live: ")
local live = model:stream({ user = prompts[1], max_tokens = 40 }, { on_delta = function(d) io.write(d.text) io.stdout:flush() end })
print(("\n   (first token after %.0f ms, the whole answer after %.0f ms)\n"):format(live.ttft_ms, live.latency_ms))

local stream = llm.experiment {
  title = "Day 1: whole answers vs streaming",
  cases = cases, concurrency = 8,
  variants = {
    { name = "chat (whole answer)", run = function(case) return model:chat(req(case)) end },
    { name = "stream", run = function(case) return model:stream(req(case), { on_delta = function() end }) end },
  },
}
stream:print()
local ttft, lat = stream:metric("ttft_p50"), stream:metric("latency_p50")
local s_ttft, s_lat = ttft.values["stream"], lat.values["stream"]
local r = ttft.vs["stream"]
print(("With streaming the first words appear after %.0f ms instead of %.0f ms (%s of the wait; "
  .. "interval of the ratio [%.2f, %.2f]); the whole answer still takes %.0f ms."):format(
  s_ttft, ttft.values["chat (whole answer)"], pct(s_ttft / ttft.values["chat (whole answer)"]),
  r.lo or 0, r.hi or 0, s_lat))

if html_path then
  local written = assert(par:html(html_path)) -- a .dry-run.html name in a dry run
  print("\nHTML report (sequential vs parallel): " .. written)
end
print("Every call is in the call log: llmrun report " .. llm.log.run_id())
