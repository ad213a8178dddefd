-- The shared cache (llm.cache.open{redis=...}, llm.cache_redis) against a
-- real redis-server: hits from another process, TTL by Redis expiry,
-- compression, hash-tagged keys, one upstream call per distinct request
-- across processes (and a dead leader's waiters taking over), semantic
-- hits across processes, and Redis down or restarted: calls still answer,
-- with one warning.
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local R = require "_llm.redis"

local srv = mock.redis()
local bin = os.getenv("LLMRUN") or "llmrun"

local write = T.write_file

-- Runs n copies of a script at once (each gets its index as arg[1]);
-- returns their outputs (stdout and stderr together) and exit statuses.
local function run_many(n, code, extra_env)
  local dir = T.tmpdir()
  write(dir .. "/s.lua", code)
  local parts = {}
  for i = 1, n do
    parts[#parts + 1] = ("(LLMRUN_LOG=0 %s %s %s/s.lua %d >%s/out%d 2>&1; echo $? >%s/st%d) &")
      :format(extra_env or "", bin, dir, i, dir, i, dir, i)
  end
  os.execute(table.concat(parts, " ") .. " wait")
  local outs, sts = {}, {}
  for i = 1, n do
    local f = io.open(dir .. "/out" .. i)
    outs[i] = f and f:read("a") or ""
    if f then f:close() end
    f = io.open(dir .. "/st" .. i)
    sts[i] = f and tonumber(f:read("l")) or -1
    if f then f:close() end
  end
  os.execute("rm -rf '" .. dir .. "'")
  return outs, sts
end

local function fresh_ns() return "t" .. math.random(1, 1 << 30) end

T.test("a response stored by one process is an exact hit in another", function()
  local ns = fresh_ns()
  local c = assert(llm.cache.open { redis = srv.url, namespace = ns })
  T.eq(tostring(c):find(srv.url:gsub("redis://", ""), 1, true) ~= nil, true)
  local m = llm.model { "sim/gpt-4o-mini", cache = c, headers = { ["x-sim-profile"] = "zero" } }
  local r1 = assert(m:chat "Name three primes.")
  T.eq(r1.cached, false)
  local r2 = assert(m:chat "Name three primes.")
  T.eq(r2.cached, "exact", "from the in-process LRU")
  local outs, sts = run_many(1, ([[
    local c = assert(llm.cache.open { redis = %q, namespace = %q })
    local m = llm.model { "sim/gpt-4o-mini", cache = c }
    local r = assert(m:chat "Name three primes.")
    print(r.cached, r.text == %q, r.saved and r.saved.usage.completion_tokens)
  ]]):format(srv.url, ns, r1.text))
  T.eq(sts[1], 0, outs[1])
  T.eq(outs[1], "exact\ttrue\t" .. r1.usage.completion_tokens .. "\n")
  -- every key is under the namespace's hash tag
  local keys = srv:cli("KEYS", "*" .. ns .. "*")
  for k in keys:gmatch("[^\n]+") do
    T.ok(k:find("^llmrun:{cache:" .. ns .. "}:") or k:find("^llmrun:{cache:" .. ns .. "/"), k)
  end
  T.eq(c:stats().stores, 1)
  local all = c:stats { all_time = true }
  T.eq(all.entries, 1)
  T.ok(all.hits >= 1 and all.stores == 1, llm.inspect(all))
  T.eq(c:clear(), 1)
  T.eq(srv:cli("EXISTS", "llmrun:{cache:" .. ns .. "}:v:" .. llm.cache.key(m, "Name three primes.")), "0")
end)

T.test("TTL is Redis expiry; a large value is stored compressed", function()
  local ns = fresh_ns()
  -- store options (compress_above) come with a URL's first open in a
  -- process: this one is spelled differently from srv.url, so it is new
  local url = srv.url:gsub("/0$", "")
  local c = assert(llm.cache.open { redis = url, namespace = ns, ttl = 0.4, compress_above = 300 })
  local m = llm.model { "sim/gpt-4o-mini", cache = c, headers = { ["x-sim-profile"] = "zero" } }
  local long = ("Write a long essay about the sea. "):rep(3)
  local r1 = assert(m:chat { user = long, max_tokens = 600 })
  T.ok(#r1.text > 300, "a long answer: " .. #r1.text)
  local vkey = "llmrun:{cache:" .. ns .. "}:v:" .. llm.cache.key(m, { user = long, max_tokens = 600 })
  local raw = R.connect(srv.url):call(1, "GET", vkey)
  T.eq(raw:sub(1, 1), "z", "compressed")
  T.ok(#raw < #r1.text, ("%d stored bytes for a %d-byte text"):format(#raw, #r1.text))
  local pttl = tonumber(srv:cli("PTTL", vkey))
  T.ok(pttl > 0 and pttl <= 400, "PTTL " .. pttl)
  T.eq(assert(m:chat { user = long, max_tokens = 600 }).cached, "exact")
  llm.sleep(0.5)
  T.eq(srv:cli("EXISTS", vkey), "0", "Redis expired it")
  T.eq(assert(m:chat { user = long, max_tokens = 600 }).cached, false, "and so did the LRU")
  -- a small one is stored as it is
  local c2 = assert(llm.cache.open { redis = srv.url, namespace = ns .. "b" })
  local m2 = llm.model { "sim/gpt-4o-mini", cache = c2, headers = { ["x-sim-profile"] = "zero" } }
  assert(m2:chat "hi")
  raw = R.connect(srv.url):call(1, "GET", "llmrun:{cache:" .. ns .. "b}:v:" .. llm.cache.key(m2, "hi"))
  T.eq(raw:sub(1, 1), "j")
end)

T.test("300 calls, 100 distinct prompts, 3 processes at once: exactly 100 upstream calls", function()
  local ns = fresh_ns()
  local outs, sts = run_many(3, ([[
    local c = assert(llm.cache.open { redis = %q, namespace = %q })
    local m = llm.model { "sim/gpt-4o-mini", cache = c,
                          headers = { ["x-sim-ttft-ms"] = "60", ["x-sim-tokens-per-s"] = "0" } }
    local me = tonumber(arg[1])
    local order = {}
    for i = 1, 100 do order[i] = i end
    math.randomseed(me) -- a different order in each process
    for i = 100, 2, -1 do local j = math.random(i) order[i], order[j] = order[j], order[i] end
    local upstream, failed = 0, 0
    llm.map(order, function(i)
      local r = m:chat { user = "Question number " .. i .. ": what is " .. i .. " + " .. i .. "?" }
      if not r then failed = failed + 1 elseif r.cached == false then upstream = upstream + 1 end
    end, { concurrency = 25 })
    print(upstream, failed)
  ]]):format(srv.url, ns))
  local upstream = 0
  for i = 1, 3 do
    T.eq(sts[i], 0, outs[i])
    local up, failed = outs[i]:match("^(%d+)\t(%d+)")
    T.eq(tonumber(failed), 0, outs[i])
    upstream = upstream + tonumber(up)
  end
  T.eq(upstream, 100, table.concat(outs, " | "))
end)

T.test("a leader killed mid-call: its waiter takes over after the lock expires", function()
  local ns = fresh_ns()
  local dir = T.tmpdir()
  local code = ([[
    local c = assert(llm.cache.open { redis = %q, namespace = %q, lock_ttl = 0.6 })
    local m = llm.model { "sim/gpt-4o-mini", cache = c, headers = { ["x-sim-ttft-ms"] = arg[1] } }
    local t0 = llm.now()
    local r = assert(m:chat "a slow question")
    print(r.cached, ("%%.1f"):format(llm.now() - t0))
  ]]):format(srv.url, ns)
  write(dir .. "/s.lua", code)
  -- the leader: a 20-second call, killed after 0.5 s
  os.execute(("LLMRUN_LOG=0 %s %s/s.lua 20000 >/dev/null 2>&1 & echo $! >%s/pid"):format(bin, dir, dir))
  llm.sleep(0.4)
  local f = io.open(dir .. "/pid")
  local pid = f:read("l")
  f:close()
  T.eq(srv:cli("EXISTS", "llmrun:{cache:" .. ns .. "}:lock:" ..
    llm.cache.key(llm.model "sim/gpt-4o-mini", "a slow question")), "1", "the leader holds the lock")
  local waiter = io.popen(("LLMRUN_LOG=0 %s %s/s.lua 10 2>&1"):format(bin, dir))
  llm.sleep(0.3)
  os.execute("kill -9 " .. pid)
  local out = waiter:read("a")
  waiter:close()
  os.execute("rm -rf '" .. dir .. "'")
  local cached, secs = out:match("^(%S+)\t(%S+)")
  T.eq(cached, "false", out)
  T.ok(tonumber(secs) >= 0.3 and tonumber(secs) < 5, "took over after the lock expired: " .. out)
end)

T.test("semantic cache shared: a paraphrase answered in one process hits in another", function()
  local ns = fresh_ns()
  local root = os.getenv("LLMRUN_SOURCE_DIR") or "."
  local by_id, para = {}, nil
  for line in io.lines(root .. "/examples/data/workload.jsonl") do
    local d = cjson.decode(line)
    by_id[d.id] = d
    if d.kind == "paraphrase" and not para then para = d end
  end
  local code = ([[
    local s = assert(llm.cache.semantic { redis = %q, namespace = %q,
      embed = llm.model "sim/text-embedding-3-small", threshold = 0.9 })
    local m = llm.model { "sim/gpt-4o-mini", cache = s, headers = { ["x-sim-profile"] = "zero" } }
    local r = assert(m:chat { temperature = 0, messages = {
      { role = "system", content = "Answer from the context with the value only." },
      { role = "user", content = %q },
      { role = "user", content = "Question: " .. arg[2] } } })
    print(r.cached, r.similarity and ("%%.3f"):format(r.similarity) or "-")
  ]]):format(srv.url, ns, para.context)
  local dir = T.tmpdir()
  write(dir .. "/s.lua", code)
  local function ask(q)
    local p = io.popen(("LLMRUN_LOG=0 %s %s/s.lua 1 %q 2>&1"):format(bin, dir, q))
    local out = p:read("a")
    p:close()
    return out
  end
  T.eq(ask(by_id[para.group].question):match("^%S+"), "false")
  local out = ask(para.question)
  os.execute("rm -rf '" .. dir .. "'")
  local kind, sim = out:match("^(%S+)\t(%S+)")
  T.eq(kind, "semantic", out)
  T.ok(tonumber(sim) >= 0.9, out)
end)

T.test("Redis down at start: calls answer, one warning, errors counted", function()
  local dead <close> = mock.redis()
  dead:kill()
  local outs, sts = run_many(1, ([[
    local c = assert(llm.cache.open { redis = %q, namespace = "x" })
    local m = llm.model { "sim/gpt-4o-mini", cache = c, headers = { ["x-sim-profile"] = "zero" } }
    local t0 = llm.now()
    for i = 1, 20 do assert(m:chat("q" .. i)) end
    print("done", c:stats().errors > 0, llm.now() - t0 < 5)
  ]]):format(dead.url))
  T.eq(sts[1], 0, outs[1])
  T.ok(outs[1]:find("done\ttrue\ttrue", 1, true), outs[1])
  local _, warnings = outs[1]:gsub("reported once", "")
  T.eq(warnings, 1, outs[1])
end)

T.test("a failing Redis store answers as the sqlite store does: nil and a cache error", function()
  local dead <close> = mock.redis()
  dead:kill()
  local c = assert(llm.cache.open { redis = dead.url, namespace = "down", redis_timeout = 0.5 })
  local rows, err = c:stats { all_time = true }
  T.eq(rows, nil)
  T.ok(llm.is_error(err), tostring(err))
  T.eq({ err.kind, err.status }, { "cache", "io" })
  T.ok(err.message:find("redis", 1, true), err.message)
end)

T.test("Redis restarted mid-run: no crash, the cache works again", function()
  local r <close> = mock.redis()
  local c = assert(llm.cache.open { redis = r.url, namespace = "restart" })
  local m = llm.model { "sim/gpt-4o-mini", cache = c, headers = { ["x-sim-profile"] = "zero" } }
  assert(m:chat "before")
  r:restart()
  for i = 1, 10 do assert(m:chat("during " .. i)) end
  llm.sleep(0.3) -- past the reconnect backoff
  assert(m:chat "after")
  llm.sleep(0.05)
  local c2 = assert(llm.cache.open { redis = r.url, namespace = "restart2" })
  local m2 = llm.model { "sim/gpt-4o-mini", cache = c2, headers = { ["x-sim-profile"] = "zero" } }
  assert(m2:chat "after")
  assert(m:chat "after again")
  T.eq(r:cli("EXISTS", "llmrun:{cache:restart}:v:" .. llm.cache.key(m, "after again")), "1",
    "stored again after the restart")
end)

T.test("a redis:// URL is a cache option; bad options are misuse", function()
  local m = llm.model { "sim/gpt-4o-mini", cache = srv.url, headers = { ["x-sim-profile"] = "zero" } }
  local q = "url option " .. math.random(1, 1 << 30)
  T.eq(assert(m:chat(q)).cached, false)
  T.eq(assert(m:chat(q)).cached, "exact")
  T.err(function() llm.cache.open { redis = 5 } end, "redis")
  local c, err = llm.cache.open { redis = "http://nope" }
  T.eq(c, nil)
  T.eq(err.kind, "cache")
end)
