-- Day 3: caching. The seed's cache was a dict keyed by md5(prompt + model):
-- it helps only when the exact same prompt comes back, lives as long as
-- the process, and cannot say what it saved. Here, on a realistic request
-- stream (examples/data/workload.jsonl: 48 questions over 12 documents,
-- 16 exact repeats, 16 paraphrases, 8 "near duplicates" that ask the same
-- thing about another entity), four variants run the same stream:
--
--   no cache            every request goes to the model
--   exact               llm.cache.open: a repeat of a request is answered from disk
--   exact + semantic    llm.cache.semantic at threshold 0.92: a paraphrase of
--                       a question seen before is answered too
--   semantic 0.80       a loose threshold: more hits, and some wrong answers
--                       (near duplicates look alike, their answers differ)
--
-- For each: share of requests answered from cache, accuracy, cost and what
-- the cache says it saved, each with a 95% interval. Then embedding caching:
-- the same texts embedded twice.
--
-- Each variant gets a fresh cache in a temporary directory, so a second run
-- measures the same thing (a warm cache would answer everything).
--
--   llmrun examples/day3_caching.lua [REPORT.html]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local html_path = arg and arg[1]

local cases = assert(llm.data.jsonl(here .. "/data/workload.jsonl"))
local embedder = llm.model "text-embedding-3-small"

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))
local function fresh(name) return dir .. "/" .. name .. ".db" end

-- The document goes in the system message and the question alone in the
-- user message: the semantic cache embeds the last user message, and by
-- default ("request" scope) compares it only with questions asked with
-- the same system message, i.e. about the same document.
local function request(case)
  return {
    system = "Answer from the context with the value only.\n\nContext:\n" .. case.context,
    user = case.question, max_tokens = 20, temperature = 0,
  }
end

local base = llm.model "gpt-4o-mini"
local caches = {
  exact = assert(llm.cache.open { path = fresh("exact") }),
  semantic = assert(llm.cache.semantic { path = fresh("semantic"), embed = embedder, threshold = 0.92 }),
  loose = assert(llm.cache.semantic { path = fresh("loose"), embed = embedder, threshold = 0.80 }),
}
local function with(cache) return function(case) return base:with_cache(cache):chat(request(case)) end end

print(("%d requests over %d documents, on %s%s\n"):format(#cases, 12, base.name,
  base.simulated and " (simulated)" or ""))
local cmp = llm.experiment {
  title = "Day 3: caching on a request stream",
  cases = cases,
  mode = "blocks", batches = 2, concurrency = 8, -- each variant alone, 8 requests in flight
  variants = {
    { name = "no cache", run = function(case) return base:chat(request(case)) end },
    { name = "exact", run = with(caches.exact) },
    { name = "exact + semantic", run = with(caches.semantic) },
    { name = "semantic 0.80", run = with(caches.loose) },
  },
  check = function(case, r) return r.text == case.answer end,
}
io.write(cmp:summary { "hit_rate", "quality", "cost", "latency_p50", "wall" })

print("\nWhat each cache counted (llm.cache stats):")
print(("%-18s %6s %9s %7s %8s %14s %12s"):format("cache", "exact", "semantic", "shared", "misses",
  "tokens saved", "cost saved"))
for _, row in ipairs { { "exact", caches.exact }, { "exact + semantic", caches.semantic },
                       { "semantic 0.80", caches.loose } } do
  local s = row[2]:stats()
  print(("%-18s %6d %9d %7d %8d %14d %12s"):format(row[1], s.exact_hits, s.semantic_hits,
    s.shared_hits, s.misses, s.tokens_saved, ("$%.5f"):format(s.cost_saved)))
end

-- Where the loose threshold's extra wrong answers come from, and what the
-- semantic lookup costs on a miss.
local function wrong_semantic(name)
  local n = 0
  for _, r in ipairs(cmp.variants[name].results) do
    if r.score == 0 and r.response and r.response.cached == "semantic" then n = n + 1 end
  end
  return n
end
local acc, p50 = cmp:metric("quality"), cmp:metric("latency_p50")
local loose = acc.vs["semantic 0.80"]
print(("\nWrong answers served by a semantic hit: %d at 0.92, %d at 0.80. The loose threshold's "
  .. "accuracy: %+.1f points [%+.1f, %+.1f] vs no cache (%s)."):format(wrong_semantic("exact + semantic"),
  wrong_semantic("semantic 0.80"), loose.effect * 100, (loose.lo or 0) * 100, (loose.hi or 0) * 100,
  loose.verdict))
print(("A semantic cache is not free: every miss first embeds the question, so the median request "
  .. "took %.0f ms with it vs %.0f ms with the exact cache alone."):format(p50.values["exact + semantic"],
  p50.values["exact"]))
print("(examples/caching.lua goes further: hits by request kind, and an audit that suggests a safe threshold.)")

-- ---- embeddings ---------------------------------------------------------------------------
local texts = {}
for i, c in ipairs(cases) do texts[i] = c.question end
local ecache = assert(llm.cache.open { path = fresh("embeddings") })
local cached_embedder = embedder:with_cache(ecache)
local first = assert(cached_embedder:embed(texts))
local second = assert(cached_embedder:embed(texts))
local es = ecache:stats()
print(("\nEmbedding %d questions: first %.0f ms and %d tokens; again %.1f ms and %d tokens (%s; "
  .. "%d tokens saved). A call with some new texts sends only those."):format(#texts, first.latency_ms,
  first.usage and first.usage.prompt_tokens or 0, second.latency_ms,
  second.usage and second.usage.prompt_tokens or 0,
  second.cached == "exact" and "every vector from the cache" or
    ("%d vectors from the cache"):format(second.cached_vectors or 0), es.tokens_saved))

if html_path then
  local written = assert(cmp:html(html_path)) -- a .dry-run.html name in a dry run
  print("\nHTML report: " .. written)
end
for _, c in pairs(caches) do c:close() end
ecache:close()
os.execute("rm -rf '" .. dir .. "'")
