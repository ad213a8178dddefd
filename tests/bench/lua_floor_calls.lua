-- The floor under llmrun's per-call CPU that any Lua pipeline on this loop
-- pays: the same chat calls as calls_client.lua, each one a task of
-- llm.map sending the already-encoded body with _llm.http.request (the C
-- binding m:chat ends in) and dropping the answer unread. No request
-- building, pipeline stages, parsing, pricing or call log. bench_calls
-- prints llmrun's CPU per call against this and this against raw libcurl,
-- so the part the pipeline costs and the part the loop and one coroutine
-- per call cost are told apart.
--   llmrun tests/bench/lua_floor_calls.lua BASE_URL N CONCURRENCY
local cjson = require "cjson"
local http = require "_llm.http"
local base, n, conc = arg[1], tonumber(arg[2]), tonumber(arg[3])
assert(base and n and conc, "usage: lua_floor_calls.lua BASE_URL N CONCURRENCY")

-- a model only for its checked network table (m.net), the one m:chat sends with
local m = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = base, api_key = "sk-bench",
                      max_retries = 0 }
local url = base .. "/chat/completions"
-- the body m:chat sends for calls_client.lua's request
local body = cjson.encode { model = "gpt-4o-mini", max_tokens = 16,
  messages = { { role = "system", content = "Be brief." }, { role = "user", content = "Name three primes." } } }
local auth = "Authorization: Bearer sk-bench"
local items = {}
for i = 1, n do items[i] = i end

llm.map({ 1, 2, 3, 4 }, function() return http.request(m.net, url, body, auth) end)

local errors = 0
local cpu0, t0 = os.clock(), llm.now()
llm.map(items, function()
  local r = http.request(m.net, url, body, auth)
  if not (r and r.status == 200) then errors = errors + 1 end
  return true
end, { concurrency = conc, progress = false })
local wall, cpu = llm.now() - t0, os.clock() - cpu0
print(cjson.encode { calls = n, concurrency = conc, errors = errors, wall_s = wall,
                     calls_per_s = n / wall, cpu_us_per_call = cpu / n * 1e6 })
