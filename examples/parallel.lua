-- Day 1, part 1: many calls at once on one event loop.
-- The same 16 questions, asked one after another and then with llm.map at
-- concurrency 1, 4 and 16: wall time and speed-up. On the simulator (no
-- API key set) the latencies follow the model's published speed profile.
--   llmrun examples/parallel.lua [MODEL]
local model = llm.model(arg and arg[1] or "gpt-4o-mini")

local questions = {}
for i = 1, 16 do
  questions[i] = ("In one sentence: why is the number %d interesting?"):format(i * 7)
end

local function ask(q)
  local r, err = model:chat { user = q, max_tokens = 40 }
  if not r then error("call failed: " .. tostring(err)) end
  return r
end

local function timed(fn)
  local t0 = llm.now()
  local out = fn()
  return llm.now() - t0, out
end

print(("%d questions to %s (%s%s)\n"):format(#questions, model.name, model.provider,
  model.simulated and ", simulated" or ""))

local seq_wall, seq = timed(function()
  local out = {}
  for i, q in ipairs(questions) do out[i] = ask(q) end
  return out
end)

local rows = { { "sequential loop", seq_wall } }
for _, c in ipairs({ 1, 4, 16 }) do
  local wall = timed(function() return llm.map(questions, ask, { concurrency = c, progress = false }) end)
  rows[#rows + 1] = { ("llm.map, concurrency %d"):format(c), wall }
end

local mean_latency = 0
for _, r in ipairs(seq) do mean_latency = mean_latency + r.latency_ms end
mean_latency = mean_latency / #seq

print(("%-26s %10s %10s %10s"):format("strategy", "wall (s)", "calls/s", "speed-up"))
for _, row in ipairs(rows) do
  print(("%-26s %10.2f %10.1f %9.1fx"):format(row[1], row[2], #questions / row[2], seq_wall / row[2]))
end
print(("\nmean latency of one call: %.0f ms; at concurrency 16 the wall time is about one call's."):format(mean_latency))
