-- Client side of the calls benchmark: N non-streaming chat calls at a
-- given concurrency against BASE_URL; prints one line of JSON with calls/s,
-- client CPU time per call (process CPU, so run the server elsewhere) and
-- peak RSS.   llmrun tests/bench/calls_client.lua BASE_URL N CONCURRENCY [MODEL]
-- CACHE=1: the model has a cache (a fresh file) and every call asks a new
-- question, so each one is a miss that is looked up, sent and stored.
local cjson = require "cjson"
local base, n, conc, model_name = arg[1], tonumber(arg[2]), tonumber(arg[3]), arg[4] or "gpt-4o-mini"
assert(base and n and conc, "usage: calls_client.lua BASE_URL N CONCURRENCY [MODEL]")

local function status_kb(field)
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+)"))
end

local with_cache = (os.getenv("CACHE") or "") ~= "" and os.getenv("CACHE") ~= "0"
local cache = with_cache and assert(llm.cache.open { path = os.tmpname() .. ".db" }) or nil
local m = llm.model { name = model_name, provider = "openai", base_url = base, api_key = "sk-bench",
                      max_retries = 0, cache = cache }
-- the same request as tests/bench/wrk_chat.lua
local req = { system = "Be brief.", user = "Name three primes.", max_tokens = 16 }
local items = {}
for i = 1, n do items[i] = i end

-- warm up: connections and code paths
llm.map({ 1, 2, 3, 4 }, function() return m:chat(req) end)

local errors = 0
local cpu0, t0 = os.clock(), llm.now()
local results = llm.map(items, function(i)
  local r, err = m:chat(with_cache and { system = req.system, user = req.user .. " #" .. i,
                                         max_tokens = req.max_tokens } or req)
  if not r then errors = errors + 1 end
  return r and true
end, { concurrency = conc, progress = false })
local wall, cpu = llm.now() - t0, os.clock() - cpu0
print(cjson.encode {
  calls = n, concurrency = conc, errors = errors, wall_s = wall, cache = with_cache,
  calls_per_s = n / wall, cpu_us_per_call = cpu / n * 1e6,
  peak_rss_mb = status_kb("VmHWM") / 1024,
})
