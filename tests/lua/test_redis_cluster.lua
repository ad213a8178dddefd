-- llmrun against a real Redis Cluster (three masters, mock.redis_cluster),
-- always through a URL naming one node: the shared cache hit from another
-- process with namespaces on every node (and cleared on every node), a
-- shared budget (its scripts
-- loaded node by node, again after SCRIPT FLUSH), a distributed
-- experiment whose processes each name a different node, a slot migrated
-- under a client (ASK, then MOVED), a single server left as it was (no
-- cluster command ever sent), and a node down: the budget's on_error
-- policy and the cache's one warning, quickly, while the other nodes'
-- keys still work.
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local R = require "_llm.redis"

local cl = mock.redis_cluster()
local url = cl.nodes[1].url -- every process is given this node unless said otherwise
local raw_bin = os.getenv("LLMRUN") or "llmrun"
local bin = "timeout 60 " .. raw_bin
local moved_slot -- the slot the migration test moves (names avoid it)

local write = T.write_file

local function read(path) return T.read_file(path, "") end

-- the copies run under a timeout: a wedged one must not hang the suite
local function run_many(n, code) return T.run_many(n, code, bin) end
local shared_budget_run = require "shared_budget_run"

-- A fresh name whose hash tag (tag_of(name)) is in a slot of node i.
local function name_on(i, tag_of)
  for _ = 1, 10000 do
    local n = "t" .. math.random(1, 1 << 30)
    local slot = R.key_slot("{" .. tag_of(n) .. "}")
    if cl:node_of(slot) == i and slot ~= moved_slot then return n end
  end
  error("no name found for node " .. i)
end

local function cache_tag(ns) return "cache:" .. ns end
local function budget_tag(n) return "budget:" .. n end

-- Waits until the client has no command in flight (sends that were
-- redirected land on their node before another process looks).
local function settle(client)
  for _ = 1, 200 do
    if client:info().pending == 0 then return end
    llm.sleep(0.01)
  end
  error("commands still pending: " .. llm.inspect(client:info()))
end

T.test("the cache shared across processes, namespaces on all three nodes, one node named", function()
  local ns = { name_on(1, cache_tag), name_on(2, cache_tag), name_on(3, cache_tag) }
  local texts = {}
  for i = 1, 3 do
    local c = assert(llm.cache.open { redis = url, namespace = ns[i] })
    local m = llm.model { "sim/gpt-4o-mini", cache = c, headers = { ["x-sim-profile"] = "zero" } }
    local r = assert(m:chat "Name three primes.")
    T.eq(r.cached, false)
    texts[i] = r.text
  end
  local client = llm.redis.client(url)
  settle(client)
  local info = client:info()
  T.eq(info.cluster, true)
  T.ok(info.moved >= 1 and info.nodes == 3 and info.map_refreshes >= 1, llm.inspect(info))
  -- each namespace's entry is on its own node
  for i = 1, 3 do
    local key = ("llmrun:{cache:%s}:v:"):format(ns[i])
    local found = cl.nodes[i]:cli("--scan", "--pattern", key .. "*")
    T.ok(found:find(key, 1, true), ("node %d has %s: %s"):format(i, key, found))
  end
  local outs, errs, sts = run_many(1, ([[
    local ns, texts = %s, %s
    for i = 1, 3 do
      local c = assert(llm.cache.open { redis = %q, namespace = ns[i] })
      local m = llm.model { "sim/gpt-4o-mini", cache = c }
      local r = assert(m:chat "Name three primes.")
      io.write(tostring(r.cached), " ", tostring(r.text == texts[i]), " ")
    end
    local info = llm.redis.client(%q):info()
    print(info.cluster, info.moved >= 1)
  ]]):format(llm.inspect(ns), llm.inspect(texts), url, url))
  T.eq(sts[1], 0, outs[1] .. errs[1])
  T.eq(outs[1], "exact true exact true exact true true\ttrue\n", errs[1])
  -- clearing a namespace reaches its node (SCAN routed by its hash tag);
  -- clearing them all reaches every node
  local c3 = assert(llm.cache.open { redis = url, namespace = ns[3] })
  T.eq(c3:clear(), 1)
  T.eq(cl.nodes[3]:cli("--scan", "--pattern", ("llmrun:{cache:%s}:v:*"):format(ns[3])), "")
  T.eq(c3:clear { namespace = "*" }, 2)
  for i = 1, 3 do T.eq(cl.nodes[i]:cli("--scan", "--pattern", "llmrun:{cache:*"), "", "node " .. i) end
end)

T.test("a budget shared by two processes, its keys on another node; scripts reloaded per node", function()
  local n = name_on(3, budget_tag)
  local total, oks, refusals = shared_budget_run(T, run_many, { processes = 2, calls = 30, ttft_ms = 10,
                                                                 usd = 0.0004, name = n, redis = url })
  T.ok(total <= 0.0004 * (1 + 1e-9), ("spent %.9f over a cap of 0.0004"):format(total))
  T.ok(refusals > 0 and oks > 2, ("%d calls, %d refused"):format(oks, refusals))
  T.eq(cl.nodes[3]:cli("EXISTS", ("llmrun:{budget:%s}:caps"):format(n)), "1")
  -- every node forgets its scripts (as after a restart): the next
  -- reservation loads them again where its keys are
  for i = 1, 3 do T.eq(cl.nodes[i]:cli("SCRIPT", "FLUSH"), "OK") end
  local b = llm.budget { usd = 1, name = name_on(2, budget_tag), redis = url }
  local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" } }
  assert(m:chat { user = "hello", max_tokens = 20 })
  for i = 1, 3 do cl.nodes[i]:cli("SCRIPT", "FLUSH") end
  local r = assert(m:chat { user = "hello again", max_tokens = 20 })
  T.near(assert(b:shared_status()).spent, b:status().spent, 1e-9)
  T.ok(r.cost > 0)
  b:close()
  local shared = llm.budget { usd = 0.0004, name = n, redis = url }
  T.near(assert(shared:shared_status()).spent, total, 1e-8, "the cluster's total is the processes' sum")
  shared:close()
end)

T.test("an experiment over two workers, each process naming a different node", function()
  local dir = T.tmpdir()
  write(dir .. "/exp.lua", [[
local cases = {}
for i = 1, 60 do cases[i] = { id = "c" .. i, question = ("What is %d + %d?"):format(i, 3 * i), answer = tostring(4 * i) } end
local mini = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-ttft-ms"] = os.getenv("TTFT") or "0", ["x-sim-tokens-per-s"] = "0" } }
local cmp = llm.experiment {
  title = "cluster arith", cases = cases, concurrency = 4, claim_after = 1,
  variants = { baseline = function(c) return mini:chat(c.question) end },
  check = function(c, r) return r.text:find(c.answer, 1, true) ~= nil end,
}
local v = cmp.variants.baseline
local ids, n = {}, 0
for _, r in ipairs(v.results) do if not ids[r.case] then n = n + 1 end ids[r.case] = true end
print(require("cjson").encode { results = #v.results, ids = n, errors = #v.errors,
  quality = cmp:metric("quality").values, workers = cmp.workers and #cmp.workers.list or 0 })
]])
  -- 60 cases of 50 ms, 4 at a time: both workers have joined before the end
  local env = "LLMRUN_LOG=0 TTFT=50"
  for w = 1, 2 do
    os.execute(("(%s %s worker --name w%d %s %s/exp.lua >%s/w%d.out 2>&1; echo $? >%s/w%d.st) &")
      :format(env, bin, w, cl.nodes[w + 1].url, dir, dir, w, dir, w))
  end
  local p = io.popen(("%s %s %s/exp.lua --workers %s 2>%s/coord.err"):format(env, bin, dir, url, dir))
  local out = p:read("a")
  p:close()
  local dist = cjson.decode(out:match("{.*}") or error(read(dir .. "/coord.err")))
  T.eq({ dist.results, dist.ids, dist.errors, dist.workers }, { 60, 60, 0, 2 }, read(dir .. "/coord.err"))
  local deadline = llm.now() + 30
  for w = 1, 2 do
    while read(dir .. "/w" .. w .. ".st") == "" and llm.now() < deadline do llm.sleep(0.05) end
    T.eq(read(dir .. "/w" .. w .. ".st"), "0\n", read(dir .. "/w" .. w .. ".out"))
    local wv = cjson.decode(read(dir .. "/w" .. w .. ".out"):match("{.*}"))
    T.eq(wv, dist, "worker " .. w .. "'s report")
  end
  local status, sout = T.llmrun(dir .. "/exp.lua", { env = { LLMRUN_LOG = 0 } })
  T.eq(status, 0)
  T.eq(cjson.decode(sout:match("{.*}")).quality, dist.quality, "the same numbers as one process")
  os.execute("rm -rf '" .. dir .. "'")
end)

T.test("once the map is read, each kind of command goes straight to its key's node", function()
  local c = llm.redis.client(url)
  -- on node 3: a command routed by its subcommand's name would miss it
  -- ("CREATE" is a slot of node 2's)
  local tag = name_on(3, function(n) return n end)
  T.eq(cl:node_of(R.key_slot("CREATE")), 2)
  local k = llm.redis.key(tag, "s")
  assert(c:call("SET", llm.redis.key(tag, "x"), 1))
  for _ = 1, 100 do
    if (c:info().map_refreshes or 0) >= 1 then break end
    llm.sleep(0.01)
  end
  local moved = c:info().moved
  T.eq(c:call("XGROUP", "CREATE", k, "g", "$", "MKSTREAM"), "OK")
  T.ok(c:call("XADD", k, "*", "f", "v"))
  local got = assert(c:call("XREADGROUP", "GROUP", "g", "w", "COUNT", 1, "STREAMS", k, ">"))
  T.eq(got[1][1], k)
  T.ok(c:call("XINFO", "STREAM", k))
  T.eq(c:call("EVAL", "return redis.call('XLEN', KEYS[1])", 1, k), 1)
  local scan = assert(c:call("SCAN", 0, "MATCH", "llmrun:{" .. tag .. "}:*", "COUNT", 1000))
  T.eq(#scan[2], 2, "both keys of the tag, found on its node")
  T.eq(c:info().moved, moved, "no redirection")
end)

T.test("a slot migrated under a client: ASK while it moves, MOVED after, both followed", function()
  local c = llm.redis.client(url)
  local key = llm.redis.key(name_on(1, function(n) return n end), "k")
  moved_slot = R.key_slot(key)
  T.eq(cl.nodes[1]:cli("CLUSTER", "KEYSLOT", key), tostring(moved_slot))
  T.eq(c:call("SET", key, "v1"), "OK")
  local before = c:info()
  local id1, id2 = cl:id(1), cl:id(2)
  -- migrating from node 1 to node 2: the key moves first, the slot after
  T.eq(cl.nodes[2]:cli("CLUSTER", "SETSLOT", moved_slot, "IMPORTING", id1), "OK")
  T.eq(cl.nodes[1]:cli("CLUSTER", "SETSLOT", moved_slot, "MIGRATING", id2), "OK")
  T.eq(cl.nodes[1]:cli("MIGRATE", "127.0.0.1", cl.nodes[2].port, key, 0, 5000), "OK")
  T.eq(c:call("GET", key), "v1", "asked on node 2")
  local mid = c:info()
  T.eq(mid.asks, before.asks + 1)
  T.eq(mid.moved, before.moved)
  for i = 1, 3 do T.eq(cl.nodes[i]:cli("CLUSTER", "SETSLOT", moved_slot, "NODE", id2), "OK") end
  T.eq(c:call("GET", key), "v1", "moved to node 2")
  T.eq(c:call("SET", key, "v2"), "OK")
  local after = c:info()
  T.eq(after.moved, mid.moved + 1, "one MOVED: the map was updated at once")
  T.eq(cl.nodes[2]:cli("GET", key), "v2")
  -- a script on the moved slot: loaded on node 2 as it runs there
  local s = llm.redis.script "return redis.call('GET', KEYS[1])"
  T.eq(s:run(c, { key }), "v2")
end)

T.test("a single server is left alone: no cluster command, nothing counted", function()
  local srv <close> = mock.redis()
  local c = llm.redis.client(srv.url)
  for i = 1, 10 do assert(c:call("SET", llm.redis.key("single" .. i, "k"), i)) end
  local s = llm.redis.script "return redis.call('INCR', KEYS[1])"
  T.eq(s:run(c, { llm.redis.key("single", "n") }), 1)
  local info = c:info()
  T.eq({ info.cluster, info.moved, info.commands }, { false, nil, 12 }, llm.inspect(info))
  T.eq(srv:cli("INFO", "commandstats"):find("cmdstat_cluster", 1, true), nil)
  c:close()
end)

T.test("a node down: the budget's policy and the cache's warning, at once; other nodes go on", function()
  local down, alive = name_on(3, budget_tag), name_on(1, budget_tag)
  local ns = name_on(3, cache_tag)
  cl.nodes[3]:kill()
  local outs, errs, sts = run_many(1, ([[
    local t0 = llm.now()
    local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" } }
    local b = llm.budget { usd = 1, name = %q, redis = %q }
    local r, err = m:chat { user = "hi", max_tokens = 20 }
    print("down", r == nil, err and err.kind, err and err.unreachable, err and err.message)
    b:close()
    b = llm.budget { usd = 1, name = %q, redis = %q }
    print("alive", m:chat { user = "hi", max_tokens = 20 } ~= nil)
    b:close()
    local c = assert(llm.cache.open { redis = %q, namespace = %q })
    local cm = llm.model { "sim/gpt-4o-mini", cache = c, headers = { ["x-sim-profile"] = "zero" } }
    for i = 1, 5 do assert(cm:chat("q" .. i)) end
    print("cache", c:stats().errors > 0)
    print("seconds", llm.now() - t0)
  ]]):format(down, url, alive, url, url, ns))
  T.eq(sts[1], 0, outs[1] .. errs[1])
  local out = outs[1]
  T.ok(out:find("down\ttrue\tbudget\ttrue\t", 1, true), out)
  T.ok(out:match("down[^\n]*unreachable") and out:match("down[^\n]*on_error")
    and out:match("down[^\n]*127%.0%.0%.1:" .. cl.nodes[3].port), "names the node that is down: " .. out)
  T.ok(out:find("alive\ttrue", 1, true), out)
  T.ok(out:find("cache\ttrue", 1, true), out)
  T.ok(tonumber(out:match("seconds\t(%S+)")) < 5, "no hang: " .. out)
  local _, warnings = errs[1]:gsub("reported once", "")
  T.eq(warnings, 1, errs[1])
end)

