-- The parts of scripts/bench_redis, each run as its own process:
--   llmrun tests/bench/redis.lua store URL NS N        fills N responses
--   llmrun tests/bench/redis.lua hits URL NS N         -> hit latencies from Redis, then the LRU
--   llmrun tests/bench/redis.lua dedup URL NS I        one of the 3 processes of the dedup run
--   llmrun tests/bench/redis.lua semwrite URL NS N FILE / semread URL NS N FILE
--                                                       semantic additions seen by another process
--   llmrun tests/bench/redis.lua budget URL N          reservation round trips
local mode, url, a, b, c = arg[1], arg[2], arg[3], arg[4], arg[5]

local function prompt(i) return ("Bench question %d: what is %d + %d?"):format(i, i, 2 * i) end

local function quantiles(list)
  table.sort(list)
  local function q(p) return list[math.max(1, math.ceil(p * #list))] end
  return q(0.5), q(0.95), q(0.99)
end

local function model(cache, extra)
  local h = { ["x-sim-profile"] = "zero" }
  for k, v in pairs(extra or {}) do h[k] = v end
  return llm.model { "sim/gpt-4o-mini", cache = cache, headers = h }
end

if mode == "store" then
  local m = model(assert(llm.cache.open { redis = url, namespace = a }))
  local list = {}
  for i = 1, tonumber(b) do list[i] = i end
  llm.map(list, function(i) assert(m:chat(prompt(i))) end, { concurrency = 32, progress = false })
  print(("stored %d responses"):format(#list))

elseif mode == "hits" then
  local cache = assert(llm.cache.open { redis = url, namespace = a })
  local m = model(cache)
  local n = tonumber(b)
  local function pass(kind)
    local us, bad = {}, 0
    for i = 1, n do
      local t0 = llm.now()
      local r = assert(m:chat(prompt(i)))
      us[i] = (llm.now() - t0) * 1e6
      if r.cached ~= "exact" then bad = bad + 1 end
    end
    local p50, p95, p99 = quantiles(us)
    print(("%-24s p50 %6.0f us  p95 %6.0f us  p99 %6.0f us  (%d lookups, %d not hits)"):format(kind, p50, p95,
      p99, n, bad))
    return p50, bad
  end
  local p50, bad = pass("hit from Redis")
  pass("hit from the LRU")
  print(("RESULT hit_p50_us=%.0f misses=%d"):format(p50, bad))

elseif mode == "dedup" then
  local m = model(assert(llm.cache.open { redis = url, namespace = a }),
    { ["x-sim-profile"] = "default", ["x-sim-ttft-ms"] = "50", ["x-sim-tokens-per-s"] = "0" })
  local order = {}
  for i = 1, 100 do order[i] = i end
  math.randomseed(tonumber(b))
  for i = 100, 2, -1 do
    local j = math.random(i)
    order[i], order[j] = order[j], order[i]
  end
  local upstream, waited = 0, 0
  llm.map(order, function(i)
    local r = assert(m:chat(prompt(1000 + i)))
    if r.cached == false then upstream = upstream + 1 elseif r.shared then waited = waited + 1 end
  end, { concurrency = 25, progress = false })
  print(("RESULT upstream=%d shared=%d"):format(upstream, waited))

elseif mode == "semwrite" or mode == "semread" then
  -- one addition at a time: the writer adds a vector and notes when; the
  -- reader searches until it finds it (each search first reads the
  -- stream's new entries: what a semantic lookup does)
  local cache = assert(llm.cache.open { redis = url, namespace = a })
  local store = cache.shared.db
  local n, file = tonumber(b), c
  local vec = {}
  if mode == "semwrite" then
    for i = 1, n do
      llm.sleep(0.02)
      for d = 1, 64 do vec[d] = math.sin(i * d) end
      -- the time is written down first, so the reader never finds the
      -- addition before its time
      local f = assert(io.open(file .. "." .. i .. ".tmp", "w"))
      f:write(("%.6f"):format(llm.wallclock()))
      f:close()
      os.rename(file .. "." .. i .. ".tmp", file .. "." .. i)
      store:sem_add(a, "bench-space", i, ("k"):rep(32), vec, "p" .. i)
    end
  else
    local delays = {}
    for i = 1, n do
      for d = 1, 64 do vec[d] = math.sin(i * d) end
      local deadline = llm.now() + 10
      while llm.now() < deadline do
        local key = store:sem_search(a, "bench-space", i, vec)
        if key then
          local seen = llm.wallclock()
          local f = io.open(file .. "." .. i)
          local t = f and tonumber(f:read("a"))
          if f then f:close() end
          if t then delays[#delays + 1] = (seen - t) * 1000 end
          break
        end
        llm.sleep(0.001)
      end
    end
    local p50, p95 = quantiles(delays)
    local mx = delays[#delays]
    print(("semantic addition visible in another process after p50 %.2f ms, p95 %.2f ms, max %.2f ms "
      .. "(%d additions; the reader searched every 1 ms)"):format(p50, p95, mx, #delays))
    print(("RESULT sem_delay_p50_ms=%.2f sem_delay_max_ms=%.2f seen=%d"):format(p50, mx, #delays))
  end

elseif mode == "budget" then
  local n = tonumber(a)
  local b = llm.budget { usd = 1000, name = "bench-" .. llm.wallclock(), redis = url }
  local m = model(nil)
  local us = {}
  for i = 1, n do
    local t0 = llm.now()
    assert(m:chat { user = "budget " .. i, max_tokens = 5 })
    us[i] = (llm.now() - t0) * 1e6
  end
  b:close()
  local plain = {}
  for i = 1, n do
    local t0 = llm.now()
    assert(m:chat { user = "plain " .. i, max_tokens = 5 })
    plain[i] = (llm.now() - t0) * 1e6
  end
  local p50 = quantiles(us)
  local q50 = quantiles(plain)
  print(("a call under a shared budget: p50 %.0f us, without: p50 %.0f us (reserve + settle: +%.0f us)")
    :format(p50, q50, p50 - q50))
end
