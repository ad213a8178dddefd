-- Cache benchmark through llm (run by scripts/bench_cache):
--   hits    p50/p99 of a whole m:chat cache hit (request normalised, key
--           hashed, looked up, response rebuilt, hooks run), from the
--           memory layer and from sqlite;
--   semantic p50/p99 of a semantic hit through llm over N stored vectors
--           (the prompt's vector comes from a table: no embedding call);
--   rerun DB PHASE  the same 1,000-call experiment on the simulator, cold
--           (PHASE=cold, fills the cache at DB) then in a new process
--           (PHASE=warm): upstream requests, tokens, cost and time saved.
local C = require "_llm.cache"
local canon = require "llm.cache_canon"
local cjson = require "cjson"

local mode = arg[1]

local function pct(v, p)
  table.sort(v)
  return v[math.floor(p * (#v - 1) + 0.5) + 1]
end

local function tmpdb()
  local p = os.tmpname()
  os.remove(p)
  return p .. ".db"
end

local function remove_db(p)
  for _, s in ipairs { "", "-wal", "-shm" } do os.remove(p .. s) end
end

-- A model that is never contacted: every call below is a hit.
local function offline_model(cache)
  return llm.model { name = "gpt-4o-mini", provider = "openai", base_url = "http://127.0.0.1:9/v1",
                     api_key = "sk-bench", cache = cache }
end

local function stored(text)
  return cjson.encode { v = 1, text = text, finish_reason = "stop", model = "gpt-4o-mini",
    usage = { prompt_tokens = 25, completion_tokens = 60, total_tokens = 85 },
    latency_ms = 850, ttft_ms = 300 }
end

local function fill(cache, m, n)
  for i = 1, n do
    local body = m.normalize({ user = "question number " .. i, temperature = 0 }, m.defaults)
    local key = C.sha256(canon.request(m, "chat", body))
    assert(cache.shared.db:put(cache.ns, key, stored(("answer %d "):format(i):rep(20))))
  end
end

if mode == "hits" then
  local LOOKUPS = math.tointeger(tonumber(arg[2] or "")) or 20000
  local N = math.min(5000, LOOKUPS)
  local path = tmpdb()
  for _, layer in ipairs { "sqlite", "memory" } do
    local c = assert(llm.cache.open { path = path, memory_bytes = layer == "memory" and (64 << 20) or 0 })
    local m = offline_model(c)
    fill(c, m, N)
    if layer == "memory" then
      for i = 1, N do m:chat { user = "question number " .. i, temperature = 0 } end
    end
    local t, now = {}, llm.now
    for j = 1, LOOKUPS do
      local req = { user = "question number " .. math.random(N), temperature = 0 }
      local t0 = now()
      local r = m:chat(req)
      t[j] = (now() - t0) * 1e6
      assert(r.cached == "exact")
    end
    local info = c.shared.db:info()
    print(("m:chat hit (%s): p50 %.1f us, p99 %.1f us (%d hits; memory hits %d, sqlite hits %d)"):format(
      layer, pct(t, 0.5), pct(t, 0.99), LOOKUPS, info.memory_hits, info.disk_hits))
    c:close()
    remove_db(path)
  end
elseif mode == "semantic" then
  local N, DIMS, QUERIES = tonumber(arg[2]) or 20000, 256, 200
  local path = tmpdb()
  local vectors, rnd = {}, math.random
  local function vec()
    local v = {}
    for j = 1, DIMS do v[j] = rnd() - 0.5 end
    return v
  end
  local emb = { name = "bench-embed", provider = "bench", simulated = true, cache = true }
  function emb:embed(text) return { vectors = { vectors[text] } } end
  local s = assert(llm.cache.semantic { path = path, embed = emb, threshold = 0.5 })
  local m = offline_model(s)
  -- store N prompts' vectors and answers directly (what N misses would leave)
  local db, t0 = s.shared.db, llm.now()
  local space = canon.model_identity(emb) .. "#native"
  for i = 1, N do
    local text = "stored prompt " .. i
    local body = m.normalize({ user = text, temperature = 0 }, m.defaults)
    local key = C.sha256(canon.request(m, "chat", body))
    assert(db:put(s.ns, key, stored("answer " .. i)))
    local copy = { messages = { { role = "user", content = "" } }, temperature = 0 }
    local scope = string.unpack("<i8", C.sha256(canon.request(m, "chat", copy)))
    vectors[text] = vec()
    assert(db:sem_add(s.ns, space, scope, key, vectors[text], text))
  end
  io.stderr:write(("(filled %d vectors in %.1f s)\n"):format(N, llm.now() - t0))
  local t = {}
  for q = 1, QUERIES do
    local text = "new prompt " .. q
    local base = vectors["stored prompt " .. math.random(N)]
    local v = {}
    for j = 1, DIMS do v[j] = base[j] + (rnd() - 0.5) * 0.2 end -- a near neighbour
    vectors[text] = v
    local t1 = llm.now()
    local r = m:chat { user = text, temperature = 0 }
    t[q] = (llm.now() - t1) * 1e3
    assert(r.cached == "semantic", "expected a semantic hit")
  end
  print(("m:chat semantic hit over %d vectors of %d dims: p50 %.2f ms, p99 %.2f ms (%d queries, kernel %s)"):format(
    N, DIMS, pct(t, 0.5), pct(t, 0.99), QUERIES, C.kernel()))
  s:close()
  remove_db(path)
elseif mode == "rerun" then
  local path, phase = assert(arg[2], "rerun DB cold|warm [N]"), assert(arg[3])
  local ncalls = math.tointeger(tonumber(arg[4] or "")) or 1000
  local ok_sim, sim = pcall(require, "llm.sim")
  if not ok_sim then
    print("rerun: the simulator (llm.sim) is not in this build: not measured")
    return
  end
  local root = os.getenv("LLMRUN_SOURCE_DIR") or "."
  local cases = {}
  for _, file in ipairs { "arithmetic.jsonl", "context_qa.jsonl", "workload.jsonl" } do
    for line in io.lines(root .. "/examples/data/" .. file) do
      local d = cjson.decode(line)
      local prompt = d.context and (d.context .. "\n\nQuestion: " .. d.question) or d.question
      cases[#cases + 1] = prompt
    end
  end
  -- 1,000 calls (or N): each case with a few system prompts, in a fixed order
  local calls, systems = {}, { "Answer briefly.", "Answer with the value only.", "Be exact.",
                               "Reply in one line." }
  for i = 1, ncalls do
    calls[i] = { system = systems[(i - 1) // #cases % #systems + 1], user = cases[(i - 1) % #cases + 1],
                 temperature = 0, max_tokens = 64 }
  end
  local c = assert(llm.cache.open { path = path })
  local m = llm.model { name = "sim/gpt-4o-mini", cache = c }
  local t0 = llm.now()
  local results = llm.map(calls, function(req) return assert(m:chat(req)) end, { concurrency = 64 })
  local wall = llm.now() - t0
  local cost, saved_cost, tokens, saved_tokens, hits, priced = 0, 0, 0, 0, 0, 0
  for _, r in ipairs(results) do
    cost = cost + (r.cost or 0)
    tokens = tokens + (r.usage.total_tokens or 0)
    if r.cached then
      hits = hits + 1
      local sv = r.saved or {}
      if sv.cost then saved_cost, priced = saved_cost + sv.cost, priced + 1 end
      saved_tokens = saved_tokens + ((sv.usage or {}).total_tokens or 0)
    end
  end
  local st = sim.stats() or {}
  local s = c:stats()
  print(("rerun %s: %d calls in %.2f s; upstream requests %d; hits %d; cost $%.6f; "
    .. "cost saved $%.6f = %.1f%% of the uncached cost (%d hits priced); tokens used %d; "
    .. "tokens saved %d; model time saved %.1f s"):format(
    phase, #results, wall, st.requests or 0, hits, cost, saved_cost,
    100 * saved_cost / math.max(cost + saved_cost, 1e-300), priced, tokens, saved_tokens,
    s.time_saved_ms / 1000))
  c:close()
else
  error("usage: cache.lua hits [LOOKUPS] | semantic [N] | rerun DB cold|warm [CALLS]")
end
