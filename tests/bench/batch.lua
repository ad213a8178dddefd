-- The client side of scripts/bench_batch: N chat requests through
-- llm.batch against the simulator at $SIM_URL (a stand-alone `llmrun
-- serve --sim`, so a killed client finds its batch again).
--
--   llmrun tests/bench/batch.lua run N [OFFSET]
--     the batch, then the same requests synchronously (64 at a time):
--     prints the time of each part, checks the answers are the same, in
--     order, and that the batch cost is exactly the Batch API price (half
--     the synchronous cost)
--   llmrun tests/bench/batch.lua submit N OFFSET
--     the batch alone, printing "resumed=<bool> id=<id> seconds=<s>"
--     (the kill -9 part runs this twice)
-- BENCH_BATCH_MODEL picks the model (default gpt-4o-mini, OpenAI's Batch
-- API; a Claude name goes through Anthropic's Message Batches).
local mode, n, offset = arg[1], tonumber(arg[2] or 1000), tonumber(arg[3] or 0)
local url = assert(os.getenv("SIM_URL"), "SIM_URL names the simulator's base URL")
local NAME = os.getenv("BENCH_BATCH_MODEL") or "gpt-4o-mini"
local m = llm.model { NAME, provider = "sim", base_url = url }

-- mixed prompt lengths: arithmetic, short questions and long documents
local filler = ("The committee reviewed the figures for the quarter and noted that revenue grew "
  .. "while costs held steady across the regions. "):rep(12)
local function request(i)
  local k = (i + offset) % 3
  if k == 0 then return { user = ("What is %d + %d?"):format(i + offset, 17), max_tokens = 16 } end
  if k == 1 then return { user = ("Briefly, name a use of the number %d."):format(i + offset), max_tokens = 40 } end
  return { system = "Answer from the context.", user = filler .. (" The code of item %d is Z%d. What is the code of item %d?")
    :format(i + offset, (i + offset) * 7, i + offset), max_tokens = 16 }
end

local reqs = {}
for i = 1, n do reqs[i] = request(i) end

local opts = { poll = { min = 0.05, max = 0.5 }, quiet = true }

if mode == "submit" then
  local t0 = llm.now()
  local res, errs = llm.batch(m, reqs, opts)
  print(("resumed=%s id=%s seconds=%.3f errors=%d"):format(tostring(res.batches[1].resumed),
    res.batches[1].id, llm.now() - t0, errs.count))
  return
end

assert(mode == "run", "usage: batch.lua run|submit N [OFFSET]")
local t0 = llm.now()
local res, errs = llm.batch(m, reqs, opts)
local t_batch = llm.now() - t0
assert(errs.count == 0, "batch errors: " .. errs.count .. " (first: " .. tostring(errs[next(errs) ~= "count" and next(errs) or 1]) .. ")")

t0 = llm.now()
local sync = llm.map(reqs, function(r) return assert(m:chat(r)) end, { concurrency = 64, progress = false })
local t_sync = llm.now() - t0

local batch_cost, sync_cost, table_price, same, in_order = 0, 0, 0, 0, 0
local prompt, completion = 0, 0
for i = 1, n do
  local b, s = res[i], sync[i]
  if b.batch.custom_id == "r" .. i then in_order = in_order + 1 end
  if b.text == s.text and b.usage.prompt_tokens == s.usage.prompt_tokens
     and b.usage.completion_tokens == s.usage.completion_tokens then
    same = same + 1
  end
  batch_cost, sync_cost = batch_cost + b.cost, sync_cost + s.cost
  table_price = table_price + llm.pricing.cost(NAME, b.usage, { batch = true })
  prompt, completion = prompt + b.usage.prompt_tokens, completion + b.usage.completion_tokens
end
print(("requests              %d to %s (%s, %d batch%s), %d prompt + %d completion tokens"):format(n, NAME,
  m.format.name == "anthropic" and "Message Batches" or "Batch API",
  #res.batches, #res.batches == 1 and "" or "es", prompt, completion))
local sec = res.batches[1].seconds
print(("batch wall time       %.2f s: %.2f s building and uploading %d requests, %.2f s waiting "
  .. "(the turnaround; the simulator answers during it), %.2f s fetching and reading the results"):format(t_batch, sec.submit, n, sec.wait,
  sec.results))
print(("client per request    %.0f us (build + upload + download + parse + pricing + hooks)")
  :format((t_batch - sec.wait) / n * 1e6))
print(("sync wall time        %.2f s (64 at a time, zero-latency profile)"):format(t_sync))
print(("results in order      %d / %d"):format(in_order, n))
print(("answers as m:chat's   %d / %d"):format(same, n))
print(("batch cost            $%.6f"):format(batch_cost))
print(("Batch API price       $%.6f (%s's batch prices from the table)"):format(table_price, NAME))
print(("sync cost             $%.6f"):format(sync_cost))
print(("batch / sync          %.6f"):format(batch_cost / sync_cost))
local exact = math.abs(batch_cost - table_price) <= 1e-12 * n
print(("cost is the batch price: %s"):format(exact and "yes" or "NO"))
if not exact or in_order ~= n or same ~= n then llm.exit(1) end
