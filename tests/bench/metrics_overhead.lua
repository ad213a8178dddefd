-- What the call log and a tracker cost per call, in CPU time (process CPU:
-- the log's writer thread included), run by scripts/bench_metrics.
--   llmrun tests/bench/metrics_overhead.lua hooks N ROUNDS
--       calls.begin + calls.finish only, with a ready response: the pure
--       cost of the observers, no network
--   llmrun tests/bench/metrics_overhead.lua http BASE_URL N ROUNDS
--       real chat calls against a local server (client CPU only)
-- Each round runs the same batch with observers off, then on (log +
-- one tagged tracker), alternating, so drift hits both alike; prints one
-- JSON line with the per-round numbers and their medians.
local cjson = require "cjson"
local calls = require "llm.calls"
local response = require "llm.response"

local mode = arg[1]

local function median(t)
  local s = { table.unpack(t) }
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

local dir = os.getenv("BENCH_DIR") or os.tmpname() .. ".d"
os.execute("mkdir -p '" .. dir .. "'")
llm.log.use(dir .. "/runs.db")
llm.log.install()

local tracker = llm.metrics.tracker("bench", { tag = "bench" })
tracker:stop()

local function set_observers(on)
  if on then
    llm.log.on()
    tracker.collector:reset()
    tracker:start()
  else
    llm.log.off()
    tracker:stop()
  end
end

local batch
if mode == "hooks" then
  local n = assert(tonumber(arg[2]), "N")
  local model = { name = "gpt-4o-mini", provider = "openai", simulated = false }
  local usage = { prompt_tokens = 120, completion_tokens = 30, total_tokens = 150, cached_tokens = 0 }
  local opts = { tag = "bench", case = "case-1" }
  batch = function()
    for i = 1, n do
      local c = calls.begin(model, "chat", {}, opts)
      calls.finish(c, response.new { text = "hello", usage = usage, latency_ms = 100 + i % 50,
        ttft_ms = 40, cost = 0.0001, retries = 0, cached = false, request_id = "req_1234567890" })
    end
    return n
  end
elseif mode == "http" then
  local base, n = arg[2], assert(tonumber(arg[3]), "N")
  local m = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = base, api_key = "sk-bench",
                        max_retries = 0 }
  local items = {}
  for i = 1, n do items[i] = "Say hello number " .. i end
  llm.log.off()
  llm.map({ 1, 2, 3, 4 }, function() return m:chat { user = "warm up", max_tokens = 5 } end, { progress = false })
  batch = function()
    llm.map(items, function(p) return m:chat({ user = p, max_tokens = 16 }, { tag = "bench" }) end,
      { concurrency = 8, progress = false })
    return n
  end
else
  error("usage: metrics_overhead.lua hooks N ROUNDS | http BASE_URL N ROUNDS")
end

local rounds = tonumber(arg[#arg]) or 5
local off_us, on_us = {}, {}
for r = 1, rounds do
  for _, on in ipairs { false, true } do
    set_observers(on)
    local c0 = os.clock()
    local n = batch()
    if on then assert(llm.log.flush()) end -- the commit is part of the cost
    local us = (os.clock() - c0) / n * 1e6
    if on then on_us[r] = us else off_us[r] = us end
  end
end
set_observers(false)
local diffs = {}
for r = 1, rounds do diffs[r] = on_us[r] - off_us[r] end
local s = tracker:stats()
print(cjson.encode {
  mode = mode, rounds = rounds, calls_per_round = tonumber(mode == "hooks" and arg[2] or arg[3]),
  off_us = off_us, on_us = on_us,
  off_us_median = median(off_us), on_us_median = median(on_us),
  overhead_us_median = median(on_us) - median(off_us),
  overhead_us_paired_median = median(diffs), -- of the per-round differences
  tracker_calls_last_round = s.calls,
})
os.execute("rm -rf '" .. dir .. "'")
