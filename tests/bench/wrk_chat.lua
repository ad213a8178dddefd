-- wrk script: a small non-streaming chat completion per request, for the
-- simulator's capacity with the zero profile (no simulated delay):
--   wrk -t1 -c64 -d10s -s tests/bench/wrk_chat.lua http://127.0.0.1:PORT/v1/chat/completions
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-sim-profile"] = "zero"
wrk.body = '{"model":"gpt-4o-mini","max_tokens":16,'
  .. '"messages":[{"role":"system","content":"Be brief."},'
  .. '{"role":"user","content":"Name three primes."}]}'

local errors = 0
function response(status, headers, body)
  if status ~= 200 then errors = errors + 1 end
end

function done(summary, latency, requests)
  io.write(("non-2xx: %d, socket errors: %d\n"):format(summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
