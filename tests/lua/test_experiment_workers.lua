-- Experiments over workers (llmrun worker, --workers; llm.experiment_workers)
-- against a real redis-server and the simulator: 3,000 cases over three
-- workers with one killed -9 halfway give every case once and the same
-- numbers as one process; blocks mode; a worker with other data refuses;
-- Redis down at start and restarted mid-run end with clear messages, not
-- hangs; rows survive the trip through JSON.
local T = ...
local mock = require "mock"
local cjson = require "cjson"

-- background processes run under `timeout`, so none outlives a failing test
local raw_bin = os.getenv("LLMRUN") or "llmrun"
local bin = "timeout 120 " .. raw_bin

local write = T.write_file

local function read(path) return T.read_file(path, "") end

-- The experiment every process runs: arithmetic cases on the simulator,
-- checked; prints its numbers as JSON on stdout.
local SCRIPT = [[
local n = tonumber(os.getenv("NCASES") or "300")
local cases = {}
for i = 1, n do cases[i] = { id = "c" .. i, question = ("What is %d + %d?"):format(i, 3 * i), answer = tostring(4 * i) } end
local headers = { ["x-sim-ttft-ms"] = os.getenv("TTFT") or "0", ["x-sim-tokens-per-s"] = "0" }
local mini = llm.model { "sim/gpt-4o-mini", headers = headers }
local big = llm.model { "sim/gpt-4o", headers = headers }
local variants = { baseline = function(c) return mini:chat(c.question) end }
if os.getenv("TWO") then variants.big = function(c) return big:chat(c.question) end end
local cmp = llm.experiment {
  title = "arith", cases = cases, concurrency = 8, claim_after = 1, mode = os.getenv("MODE"),
  batches = os.getenv("MODE") == "blocks" and 2 or nil, variants = variants,
  check = function(c, r) return r.text:find(c.answer, 1, true) ~= nil end,
}
local out = { variants = {} }
for name, v in pairs(cmp.variants) do
  local ids, dup = {}, 0
  for _, r in ipairs(v.results) do if ids[r.case] then dup = dup + 1 end ids[r.case] = true end
  local n_ids = 0
  for _ in pairs(ids) do n_ids = n_ids + 1 end
  local cost, prompt, completion, passed, texts = 0, 0, 0, 0, 0
  for _, r in ipairs(v.results) do
    cost = cost + (r.cost or 0)
    if r.pass then passed = passed + 1 end
    if r.response and r.response.text then texts = texts + #r.response.text end
  end
  local st = cmp:stats(name)
  out.variants[name] = { results = #v.results, ids = n_ids, dup = dup, passed = passed, calls = v.calls,
    cost = ("%.9f"):format(cost), texts = texts, errors = #v.errors, walls = #v.walls }
end
out.quality = cmp:metric("quality").values
out.workers = cmp.workers
print(require("cjson").encode(out))
]]

local function scratch()
  local dir = T.tmpdir()
  write(dir .. "/exp.lua", SCRIPT)
  return dir
end

local function results_len(r)
  local keys = r:cli("--scan", "--pattern", "*:results")
  local k = keys:match("[^\n]+")
  return k and tonumber(r:cli("XLEN", k)) or 0
end

-- how many cases the consumer has read and not yet acknowledged
local function pending_of(r, consumer)
  local k = r:cli("--scan", "--pattern", "*:units"):match("[^\n]+")
  if not k then return 0 end
  -- the summary form: count, first id, last id, then consumer and count pairs
  local out = r:cli("XPENDING", k, "workers")
  return tonumber(out:match("\n" .. consumer .. "\n(%d+)")) or 0
end

T.test("3,000 cases, 3 workers, one killed -9 halfway: every case once, numbers as one process", function()
  local r <close> = mock.redis()
  local dir = scratch()
  local env = "NCASES=3000 TTFT=2 LLMRUN_LOG=0"
  for w = 1, 3 do
    -- the worker's own pid (exec), to kill it and not its timeout. Worker
    -- 1's answers take 200 ms, so it always has cases under way when it is
    -- killed: a fast one can be killed after sending its results and
    -- before acknowledging them, which leaves nothing to reclaim.
    os.execute(("%s %s timeout 120 sh -c 'echo $$ >%s/w%d.pid; exec %s worker --name w%d %s %s/exp.lua' >%s/w%d.out 2>&1 &")
      :format(env, w == 1 and "TTFT=200" or "", dir, w, raw_bin, w, r.url, dir, dir, w))
  end
  os.execute(("(%s %s %s/exp.lua --workers %s >%s/coord.out 2>%s/coord.err; echo $? >%s/coord.st) &")
    :format(env, bin, dir, r.url, dir, dir, dir))
  -- halfway: kill worker 1 without a chance to clean up, while it holds
  -- cases (on a loaded machine it may be between reads at the halfway mark,
  -- and a worker killed holding nothing leaves nothing to reclaim)
  local deadline = llm.now() + 120
  while (results_len(r) < 1500 or pending_of(r, "w1") == 0) and results_len(r) < 2700
    and llm.now() < deadline do
    llm.sleep(0.02)
  end
  T.ok(results_len(r) < 3000, "killed before the end")
  os.execute("kill -9 " .. read(dir .. "/w1.pid"):match("%d+"))
  while read(dir .. "/coord.st") == "" and llm.now() < deadline do llm.sleep(0.1) end
  T.eq(read(dir .. "/coord.st"), "0\n", read(dir .. "/coord.err"))
  local dist = cjson.decode(read(dir .. "/coord.out"):match("{.*}"))
  local v = dist.variants.baseline
  T.eq({ v.results, v.ids, v.dup, v.errors }, { 3000, 3000, 0, 0 }, "every case once")
  T.ok(dist.workers.reclaimed >= 1, "the killed worker's cases were reclaimed: " .. dist.workers.reclaimed)
  T.eq(#dist.workers.list, 3)
  local err = read(dir .. "/coord.err")
  T.ok(err:find("done: 3000/3000 runs", 1, true) and err:find("reclaimed", 1, true)
    and err:find("w2 ", 1, true), err)
  -- the other workers end with the same report
  for w = 2, 3 do
    while not read(dir .. "/w" .. w .. ".out"):find("}\n", 1, true) and llm.now() < deadline do llm.sleep(0.05) end
    local wv = cjson.decode(read(dir .. "/w" .. w .. ".out"):match("{.*}"))
    T.eq(wv.variants, dist.variants, "worker " .. w .. "'s report")
  end
  -- one process, the same cases
  local status, out = T.llmrun(dir .. "/exp.lua", { env = { NCASES = 3000, LLMRUN_LOG = 0 } })
  T.eq(status, 0)
  local single = cjson.decode(out:match("{.*}"))
  T.eq(dist.quality, single.quality)
  local s = single.variants.baseline
  T.eq({ v.results, v.passed, v.calls, v.cost, v.texts }, { s.results, s.passed, s.calls, s.cost, s.texts })
  os.execute("rm -rf '" .. dir .. "'")
end)

T.test("blocks mode over workers: each variant's wall time, the same numbers", function()
  local r <close> = mock.redis()
  local dir = scratch()
  local env = "NCASES=60 TWO=1 MODE=blocks LLMRUN_LOG=0"
  os.execute(("(%s %s worker %s %s/exp.lua >%s/w.out 2>&1; echo $? >%s/w.st) &"):format(env, bin, r.url, dir, dir, dir))
  local p = io.popen(("%s %s %s/exp.lua --workers %s 2>%s/coord.err"):format(env, bin, dir, r.url, dir))
  local out = p:read("a")
  p:close()
  local dist = cjson.decode(out:match("{.*}") or error(read(dir .. "/coord.err")))
  local status, sout = T.llmrun(dir .. "/exp.lua", { env = { NCASES = 60, TWO = 1, MODE = "blocks", LLMRUN_LOG = 0 } })
  T.eq(status, 0)
  local single = cjson.decode(sout:match("{.*}"))
  for _, name in ipairs { "baseline", "big" } do
    local a, b = dist.variants[name], single.variants[name]
    T.eq({ a.results, a.passed, a.cost, a.walls }, { b.results, b.passed, b.cost, 2 }, name)
  end
  local deadline = llm.now() + 30
  while read(dir .. "/w.st") == "" and llm.now() < deadline do llm.sleep(0.05) end
  T.eq(read(dir .. "/w.st"), "0\n", read(dir .. "/w.out"))
  os.execute("rm -rf '" .. dir .. "'")
end)

T.test("a worker whose experiment differs (other data) refuses it and says why", function()
  local r <close> = mock.redis()
  local dir = scratch()
  os.execute(("NCASES=50 %s %s/exp.lua --workers %s >/dev/null 2>&1 & echo $! >%s/pid"):format(bin, dir, r.url, dir))
  local status, _, err = T.llmrun(("worker --wait 10 %s %s/exp.lua"):format(r.url, dir), { env = { NCASES = 51 } })
  T.eq(status, 1)
  T.ok(err:find("differs", 1, true) and err:find("same script and data", 1, true), err)
  os.execute("kill " .. read(dir .. "/pid"):match("%d+"))
  os.execute("rm -rf '" .. dir .. "'")
end)

T.test("a coordinator killed -9: its workers stop once it shows no sign of life", function()
  local r <close> = mock.redis()
  local dir = scratch()
  local env = "NCASES=200 TTFT=50 LLMRUN_LOG=0"
  os.execute(("%s timeout 120 sh -c 'echo $$ >%s/c.pid; exec %s %s/exp.lua --workers %s' >/dev/null 2>&1 &")
    :format(env, dir, raw_bin, dir, r.url))
  os.execute(("(%s %s worker --wait 1.5 %s %s/exp.lua >%s/w.out 2>&1; echo $? >%s/w.st) &")
    :format(env, bin, r.url, dir, dir, dir))
  local deadline = llm.now() + 30
  while results_len(r) < 5 and llm.now() < deadline do llm.sleep(0.05) end
  os.execute("kill -9 " .. read(dir .. "/c.pid"):match("%d+"))
  local t0 = llm.now()
  while read(dir .. "/w.st") == "" and llm.now() < deadline do llm.sleep(0.1) end
  T.eq(read(dir .. "/w.st"), "1\n", read(dir .. "/w.out"))
  T.ok(read(dir .. "/w.out"):find("no sign of life", 1, true), read(dir .. "/w.out"))
  T.ok(llm.now() - t0 < 10, "stopped in bounded time")
  os.execute("rm -rf '" .. dir .. "'")
end)

T.test("Redis down at start: the coordinator and a worker stop at once with a clear message", function()
  local r <close> = mock.redis()
  r:kill()
  local dir = scratch()
  local t0 = llm.now()
  local status, _, err = T.llmrun(("%s/exp.lua --workers %s"):format(dir, r.url), { env = { NCASES = 10 } })
  T.eq(status, 1)
  T.ok(err:find("cannot reach Redis", 1, true) and err:find("refused", 1, true), err)
  status, _, err = T.llmrun(("worker --wait 1 %s %s/exp.lua"):format(r.url, dir), { env = { NCASES = 10 } })
  T.eq(status, 1)
  T.ok(err:find("unreachable", 1, true) and err:find("no coordinator enqueued", 1, true), err)
  T.ok(llm.now() - t0 < 10, "no hang")
  os.execute("rm -rf '" .. dir .. "'")
end)

T.test("Redis restarted mid-run without persistence: both sides stop and say why", function()
  local r <close> = mock.redis()
  local dir = scratch()
  local env = "NCASES=400 TTFT=100 LLMRUN_LOG=0"
  os.execute(("(%s %s worker %s %s/exp.lua >%s/w.out 2>&1; echo $? >%s/w.st) &"):format(env, bin, r.url, dir, dir, dir))
  os.execute(("(%s %s %s/exp.lua --workers %s >/dev/null 2>%s/c.err; echo $? >%s/c.st) &"):format(env, bin, dir, r.url, dir, dir))
  local deadline = llm.now() + 60
  while results_len(r) < 20 and llm.now() < deadline do llm.sleep(0.05) end
  r:restart()
  while (read(dir .. "/c.st") == "" or read(dir .. "/w.st") == "") and llm.now() < deadline do llm.sleep(0.1) end
  T.eq(read(dir .. "/c.st"), "1\n")
  T.ok(read(dir .. "/c.err"):find("gone", 1, true), read(dir .. "/c.err"))
  T.eq(read(dir .. "/w.st"), "1\n")
  T.ok(read(dir .. "/w.out"):find("gone", 1, true), read(dir .. "/w.out"))
  os.execute("rm -rf '" .. dir .. "'")
end)

T.test("a script without an experiment has nothing to serve", function()
  local r <close> = mock.redis()
  local dir = T.tmpdir()
  write(dir .. "/none.lua", "print('hi')")
  local status, out, err = T.llmrun(("worker %s %s/none.lua"):format(r.url, dir))
  T.eq(status, 1)
  T.eq(out, "hi\n")
  T.ok(err:find("ran no llm.experiment", 1, true), err)
  status, _, err = T.llmrun("worker http://x " .. dir .. "/none.lua")
  T.eq(status, 2)
  T.ok(err:find("bad Redis URL", 1, true), err)
  os.execute("rm -rf '" .. dir .. "'")
end)

T.test("rows survive JSON: errors keep their kind, integers stay integers", function()
  local W = require "llm.experiment_workers"
  local row = { case = "c1", index = 3, elapsed = 1.5, ttft = 1.5, cost = 0.25, prompt = 10, completion = 5,
    cached = 0, retries = 0, from_cache = false, calls = 1, hits = 0, simulated = 1, call_errors = 1,
    models = { ["gpt-4o"] = 1 }, error = llm.error("timeout", "too slow", { status = 504 }),
    response = { text = "hi", usage = { prompt_tokens = 10 }, cached = false },
    result = { ok = true, fn = print }, check_calls = 0, check_hits = 0, check_cost = 0,
    check_cost_unknown = false, log = { { tag = "t", prompt = 10, retries = 2, status = "error" } } }
  local back = W._unpack_row(W._pack_row(row))
  T.eq(math.type(back.index), "integer")
  T.eq(math.type(back.prompt), "integer")
  T.eq(math.type(back.models["gpt-4o"]), "integer")
  T.eq(math.type(back.log[1].retries), "integer")
  T.ok(llm.is_error(back.error, "timeout"))
  T.eq(tostring(back.error), tostring(row.error))
  T.eq(back.response.text, "hi")
  T.eq(back.result, { ok = true })
  local s = W._unpack_row(W._pack_row { case = "x", error = "boom\nstack", models = {} })
  T.eq(s.error, "boom\nstack")
end)
