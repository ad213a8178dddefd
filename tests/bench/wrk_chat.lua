-- wrk script: a small non-streaming chat completion per request, the same
-- request the client benchmarks send (tests/bench/calls_client.lua,
-- openai_sdk_client.mjs). No response() callback: it would slow wrk down
-- and flatter the clients it is the upper bound for.
--   wrk -t1 -c64 -d10s -s tests/bench/wrk_chat.lua http://127.0.0.1:PORT/v1/chat/completions
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.headers["x-sim-profile"] = "zero"
wrk.body = '{"model":"gpt-4o-mini","max_tokens":16,'
  .. '"messages":[{"role":"system","content":"Be brief."},'
  .. '{"role":"user","content":"Name three primes."}]}'
