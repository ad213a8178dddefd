-- wrk script: the small chat completion of wrk_chat.lua, with a counter in
-- the prompt so every request is a new one (a gateway's cache misses and
-- forwards it). Extra headers come from wrk's -H.
--   wrk -t1 -c64 -d5s -s tests/bench/wrk_unique.lua http://127.0.0.1:PORT/v1/chat/completions
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
local n = 0
local salt = tostring(os.time()) .. tostring(math.random(1, 1e9))
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, '{"model":"gpt-4o-mini","max_tokens":16,'
    .. '"messages":[{"role":"user","content":"Name three primes. (' .. salt .. " " .. n .. ')"}]}')
end
