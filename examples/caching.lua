-- Day 3: caching. A stream of 80 questions over 12 documents
-- (examples/data/workload.jsonl): 48 originals, 16 exact repeats and 16
-- paraphrases, plus 8 originals that are near-duplicates of another
-- question (same attribute, other entity: a loose semantic cache answers
-- them wrongly). Every request goes through an exact + semantic cache;
-- the answers are checked against the data, and the audit shows which
-- threshold would have been safe.
--   llmrun examples/caching.lua [THRESHOLD] [MODEL]
-- On the simulator (no API key set) latencies follow the model's profile.
local cjson = require "cjson"

local threshold = tonumber(arg and arg[1]) or 0.92
local model_name = arg and arg[2] or "gpt-4o-mini"
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "examples"

local cases = {}
for line in io.lines(here .. "/data/workload.jsonl") do cases[#cases + 1] = cjson.decode(line) end

-- A private cache file, so every run starts cold (drop `path` to use the
-- default one, $XDG_CACHE_HOME/llmrun/cache.db, and see hits across runs).
local path = os.tmpname()
os.remove(path)
path = path .. ".db"

local cache = assert(llm.cache.semantic {
  path = path,
  embed = llm.model "text-embedding-3-small",
  threshold = threshold,
  -- re-ask a quarter of the semantic hits, compare near misses from 0.5 up
  audit = { rate = 0.25, floor = 0.5 },
})
local model = llm.model { model_name, cache = cache }

-- The document and the question as separate messages: the default scope
-- ("request") then only lets questions about the same document match.
local function ask(case)
  local r, err = model:chat {
    messages = {
      { role = "system", content = "Answer from the context with the value only." },
      { role = "user", content = case.context },
      { role = "user", content = "Question: " .. case.question },
    },
    temperature = 0, max_tokens = 32,
  }
  if not r then error(("%s: %s"):format(case.id, tostring(err))) end
  return r
end

print(("%d requests to %s (%s%s), semantic threshold %.2f\n"):format(#cases, model.name,
  model.provider, model.simulated and ", simulated" or "", threshold))

local t0 = llm.now()
local results = llm.map(cases, ask, { concurrency = 4 })
local wall = llm.now() - t0

-- What each kind of request got, and whether the answer was right.
local by = {}
local function row(name)
  by[name] = by[name] or { n = 0, exact = 0, semantic = 0, shared = 0, miss = 0, right = 0 }
  return by[name]
end
local wrong_hits = {}
for i, case in ipairs(cases) do
  local r = results[i]
  local kind = case.near_duplicate_of and "near-duplicate" or case.kind
  for _, name in ipairs { kind, "all" } do
    local b = row(name)
    b.n = b.n + 1
    local how = r.shared and "shared" or r.cached or "miss"
    b[how] = b[how] + 1
    if r.text == case.answer then b.right = b.right + 1 end
  end
  if r.cached == "semantic" and r.text ~= case.answer then
    wrong_hits[#wrong_hits + 1] = ("  %.3f  %q\n         matched %q"):format(r.similarity, case.question,
      (r.matched_prompt or ""):gsub("^Question: ", ""))
  end
end

print(("%-15s %5s %6s %9s %7s %6s %9s"):format("request kind", "n", "exact", "semantic", "shared",
  "miss", "correct"))
for _, name in ipairs { "original", "repeat", "paraphrase", "near-duplicate", "all" } do
  local b = by[name]
  if b then
    print(("%-15s %5d %6d %9d %7d %6d %8.0f%%"):format(name, b.n, b.exact, b.semantic, b.shared,
      b.miss, 100 * b.right / b.n))
  end
end

local s = cache:stats()
print(("\nhit rate %.0f%% (%d exact, %d semantic, %d shared in flight; %d misses) in %.1f s"):format(
  100 * (s.hit_rate or 0), s.exact_hits, s.semantic_hits, s.shared_hits, s.misses, wall))
print(("saved: %d tokens, $%.5f (%d of %d hits priced), %.1f s of model time"):format(
  s.tokens_saved, s.cost_saved, s.priced_hits, s.hits, s.time_saved_ms / 1000))
if #wrong_hits > 0 then
  print(("\nsemantic hits with a wrong answer (%d):"):format(#wrong_hits))
  print(table.concat(wrong_hits, "\n"))
end

local thresholds = { 0.50, 0.60, 0.70, 0.80, 0.85, 0.90, 0.92, 0.95, 0.98 }
print("\nfalse-hit rate by threshold (audited semantic matches: sampled hits and near misses)")
print(cache:format_audit(thresholds))
-- the loosest threshold whose audited matches (at least 5) never gave another answer
local pick
for _, row in ipairs(assert(cache:audit_table(thresholds))) do
  if not pick and row.samples >= 5 and row.false_hit_rate == 0 then pick = row.threshold end
end
if pick then
  print(("\nThe loosest threshold with no false hit in %s audited matches: %.2f. Try it:"):format(
    "at least 5", pick))
  print(("  llmrun examples/caching.lua %.2f"):format(pick))
else
  print("\nToo few audited matches to pick a threshold: raise audit.rate or run more requests.")
end

cache:close()
for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(path .. suffix) end
