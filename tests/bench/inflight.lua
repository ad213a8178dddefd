-- Many calls in flight at once: N chat calls, all started together, each
-- answered by the simulator after a TTFT_MS delay (x-sim-ttft-ms). Prints
-- JSON: completions, errors, wall time and peak RSS.
--   llmrun tests/bench/inflight.lua BASE_URL N TTFT_MS [stream]
local cjson = require "cjson"
local base, n, ttft, stream = arg[1], tonumber(arg[2]), arg[3], arg[4] == "stream"
local m = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = base, api_key = "sk",
                      max_retries = 0, timeout = 120,
                      headers = { ["x-sim-ttft-ms"] = ttft, ["x-sim-tokens-per-s"] = "0" } }
local items = {}
for i = 1, n do items[i] = i end
local errors, first_err = 0, nil
local ttfts, planned = {}, {}
local t0 = llm.now()
llm.map(items, function(i)
  local r, err
  if stream then
    local s = m:stream { user = "Say hello number " .. i, max_tokens = 8 }
    local ok, e = pcall(function() for _ in s do end end)
    r, err = s:result()
    if r then ttfts[#ttfts + 1] = r.ttft_ms end
  else
    r, err = m:chat { user = "Say hello number " .. i, max_tokens = 8 }
  end
  if not r then
    errors = errors + 1
    first_err = first_err or tostring(err)
  end
end, { concurrency = n, progress = false })
local wall = llm.now() - t0
local f = io.open("/proc/self/status")
local status = f:read("a")
f:close()
table.sort(ttfts)
print(cjson.encode {
  calls = n, errors = errors, first_error = first_err, wall_s = wall,
  ttft_ms_median = ttfts[math.max(1, #ttfts // 2)],
  peak_rss_mb = tonumber(status:match("VmHWM:%s*(%d+)")) / 1024,
})
