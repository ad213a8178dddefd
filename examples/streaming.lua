-- Day 1, part 2: streaming for perceived latency.
-- For a few prompts, the time to the first token (what a user waits for
-- before text appears) against the time to the whole answer, measured at
-- the moment bytes arrive.
--   llmrun examples/streaming.lua [MODEL]
local model = llm.model(arg and arg[1] or "gpt-4o-mini")

local prompts = {
  "Tell a two-sentence story about a lighthouse.",
  "Explain what a hash table is, briefly.",
  "List three uses of copper.",
  "Describe the colour blue to someone who cannot see.",
}

print(("streaming %d answers from %s (%s%s)\n"):format(#prompts, model.name, model.provider,
  model.simulated and ", simulated" or ""))

local rows, sum_ttft, sum_total = {}, 0, 0
for i, p in ipairs(prompts) do
  io.write(("[%d] "):format(i))
  local r, err = model:stream({ user = p, max_tokens = 60 }, {
    on_delta = function(d) io.write(d.text); io.stdout:flush() end })
  io.write("\n")
  if not r then error("stream failed: " .. tostring(err)) end
  rows[i] = r
  sum_ttft, sum_total = sum_ttft + r.ttft_ms, sum_total + r.latency_ms
end

print(("\n%-4s %12s %12s %10s"):format("#", "TTFT (ms)", "total (ms)", "tokens"))
for i, r in ipairs(rows) do
  print(("%-4d %12.0f %12.0f %10d"):format(i, r.ttft_ms, r.latency_ms,
    r.usage and r.usage.completion_tokens or 0))
end
print(("\nmean TTFT %.0f ms vs mean total %.0f ms: with streaming, text appears %.1fx sooner."):format(
  sum_ttft / #rows, sum_total / #rows, sum_total / sum_ttft))
