-- The cache against the built-in simulator, whose request counter
-- (llm.sim.stats(), GET /sim/stats) proves what reached the "provider":
-- identical concurrent requests make exactly one upstream call, a rerun
-- in a new process makes none, and a paraphrase from the workload data is
-- a semantic hit while its near-duplicate is not.
local T = ...
local cjson = require "cjson"
local tmpdb = T.tmpdb
local remove_db = T.remove_db

local function requests()
  return assert(llm.sim.stats()).requests
end

T.test("identical concurrent requests: one upstream call, by the simulator's count", function()
  local path = tmpdb()
  local c = assert(llm.cache.open { path = path })
  local m = llm.model { "sim/gpt-4o-mini", cache = c }
  llm.sim.ensure()
  local before = requests()
  local out = llm.map({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }, function(i)
    if i % 3 == 0 then
      return m:stream({ user = "Name three primes.", temperature = 0 }, { on_delta = function() end })
    end
    return m:chat { user = "Name three primes.", temperature = 0 }
  end, { concurrency = 12 })
  T.eq(requests() - before, 1)
  local fresh = 0
  for _, r in ipairs(out) do
    T.eq(r.text, out[1].text)
    if not r.cached then fresh = fresh + 1 end
  end
  T.eq(fresh, 1)
  T.eq(c:stats().shared_hits, 11)
  -- the same questions again: no request at all
  llm.map({ 1, 2, 3 }, function() return m:chat { user = "Name three primes.", temperature = 0 } end)
  T.eq(requests() - before, 1)
  c:close()
  remove_db(path)
end)

T.test("a rerun in a new process makes no upstream call and saves its whole cost", function()
  local path = tmpdb()
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(([[
local c = assert(llm.cache.open { path = %q })
local m = llm.model { "sim/gpt-4o-mini", cache = c, headers = { ["x-sim-profile"] = "zero" } }
local qs = {}
for i = 1, 40 do qs[i] = { user = ("What is %%d times 7?"):format(i), temperature = 0 } end
local cost, saved = 0, 0
for _, r in ipairs(llm.map(qs, function(q) return assert(m:chat(q)) end, { concurrency = 8 })) do
  cost = cost + r.cost
  saved = saved + (r.saved and r.saved.cost or 0)
end
print(llm.sim.running() and llm.sim.stats().requests or 0, cost, saved)
]]):format(path))
  f:close()
  local st1, out1, err1 = T.llmrun(script)
  T.eq(st1, 0, err1)
  local n1, cost1, saved1 = out1:match("^(%d+)\t(%S+)\t(%S+)\n$")
  T.eq(tonumber(n1), 40)
  T.ok(tonumber(cost1) > 0)
  T.eq(tonumber(saved1), 0)
  local st2, out2, err2 = T.llmrun(script)
  T.eq(st2, 0, err2)
  local n2, cost2, saved2 = out2:match("^(%d+)\t(%S+)\t(%S+)\n$")
  T.eq(tonumber(n2), 0, "no request reached the simulator")
  T.eq(tonumber(cost2), 0)
  T.near(tonumber(saved2), tonumber(cost1), 1e-9)
  os.remove(script)
  remove_db(path)
end)

T.test("workload data: a paraphrase is a semantic hit, its near-duplicate is not", function()
  local root = os.getenv("LLMRUN_SOURCE_DIR") or "."
  local cases, by_id = {}, {}
  for line in io.lines(root .. "/examples/data/workload.jsonl") do
    local d = cjson.decode(line)
    cases[#cases + 1] = d
    by_id[d.id] = d
  end
  local para, near
  for _, d in ipairs(cases) do
    if d.kind == "paraphrase" and not para then para = d end
    if d.near_duplicate_of and not near then near = d end
  end
  local path = tmpdb()
  local s = assert(llm.cache.semantic { path = path, embed = llm.model "sim/text-embedding-3-small",
                                        threshold = 0.9 })
  local m = llm.model { "sim/gpt-4o-mini", cache = s, headers = { ["x-sim-profile"] = "zero" } }
  local function ask(d)
    return assert(m:chat { temperature = 0, messages = {
      { role = "system", content = "Answer from the context with the value only." },
      { role = "user", content = d.context },
      { role = "user", content = "Question: " .. d.question } } })
  end
  local orig = ask(by_id[para.group])
  T.eq(orig.cached, false)
  local r = ask(para)
  T.eq(r.cached, "semantic")
  T.ok(r.similarity >= 0.9, tostring(r.similarity))
  T.eq(r.text, orig.text)
  T.eq(r.matched_prompt, "Question: " .. by_id[para.group].question)
  ask(by_id[near.near_duplicate_of])
  local rn = ask(near)
  T.eq(rn.cached, false, "a near-duplicate (same attribute, other entity) stays a miss at 0.9")
  -- prompt embeddings are counted apart from the requests
  T.eq(s:stats().semantic_hits, 1)
  T.eq(s:namespace("default/prompts"):stats().misses, 4)
  s:close()
  remove_db(path)
end)
