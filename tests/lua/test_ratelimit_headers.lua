-- llm.ratelimit_headers: OpenAI's and Anthropic's rate-limit headers in
-- one shape, on results (r.ratelimit) and errors (err.ratelimit). The
-- recorded headers of real responses are checked in test_provider_fixtures.
local T = ...
local mock = require "mock"
local R = require "llm.ratelimit_headers"

T.test("durations in OpenAI's format", function()
  local cases = { { "6m0s", 360 }, { "20ms", 0.02 }, { "1s", 1 }, { "0s", 0 }, { "1m26.4s", 86.4 },
                  { "7.66s", 7.66 }, { "1h2m3.5s", 3723.5 }, { "17ms", 0.017 }, { "3", 3 },
                  { "250us", 0.00025 } }
  for _, c in ipairs(cases) do T.near(R.duration(c[1]), c[2], 1e-9, c[1]) end
  for _, bad in ipairs { "", "x", "5 minutes", "-1s", "1q" } do T.eq(R.duration(bad), nil, bad) end
end)

T.test("RFC 3339 times", function()
  T.eq(R.rfc3339("1970-01-01T00:00:00Z"), 0)
  T.eq(R.rfc3339("2026-04-05T10:23:54Z"), 1775384634)
  T.eq(R.rfc3339("2026-04-05T12:23:54+02:00"), 1775384634)
  T.near(R.rfc3339("2024-02-29T23:59:59.5Z"), 1709251199.5, 1e-6)
  T.eq(R.rfc3339("2026-04-05 10:23:54"), nil, "no zone")
  T.eq(R.rfc3339("yesterday"), nil)
end)

T.test("parse: both vendors, any header case, only what was sent", function()
  local now = R.rfc3339("2026-04-05T10:23:50Z")
  local rl = R.parse({
    ["X-RateLimit-Limit-Requests"] = "3500", ["x-ratelimit-remaining-requests"] = "3499",
    ["x-ratelimit-reset-requests"] = "17ms", ["x-ratelimit-reset-tokens"] = "6m0s",
    ["x-ratelimit-limit-tokens-usage-based"] = "90000",
    ["anthropic-ratelimit-input-tokens-limit"] = "4000000",
    ["anthropic-ratelimit-input-tokens-reset"] = "2026-04-05T10:23:54Z",
    ["anthropic-ratelimit-output-tokens-reset"] = "2026-04-05T10:23:00Z", -- in the past: 0
    ["content-type"] = "application/json",
  }, now)
  T.eq(rl.requests, { limit = 3500, remaining = 3499, reset = 0.017, reset_at = now + 0.017 })
  T.eq(rl.tokens, { reset = 360, reset_at = now + 360 })
  T.eq(rl.input_tokens, { limit = 4000000, reset = 4, reset_at = now + 4 })
  T.eq(rl.output_tokens, { reset = 0, reset_at = now })
  T.eq(R.parse({ ["content-type"] = "text/plain" }, now), nil)
  T.eq(R.parse(nil, now), nil)
end)

T.test("a 429 carries err.ratelimit; a success r.ratelimit", function()
  local srv <close> = mock.start(mock.script(
    "status 429\nheader Content-Type: application/json\nheader x-ratelimit-limit-tokens: 30000\n"
      .. "header x-ratelimit-remaining-tokens: 0\nheader x-ratelimit-reset-tokens: 1.5s\n"
      .. 'body {"error":{"message":"Rate limit reached","type":"tokens","code":"rate_limit_exceeded"}}',
    "status 200\nheader Content-Type: application/json\nheader x-ratelimit-remaining-requests: 9\n"
      .. 'body {"choices":[{"index":0,"message":{"content":"ok"},"finish_reason":"stop"}]}'))
  local m = llm.model { name = "gpt-4o", provider = "openai", base_url = srv.url, api_key = "k", max_retries = 0 }
  local r, err = m:chat "hi"
  T.eq(r, nil)
  T.eq(err.status, 429)
  T.eq({ err.ratelimit.tokens.limit, err.ratelimit.tokens.remaining, err.ratelimit.tokens.reset }, { 30000, 0, 1.5 })
  r = assert(m:chat "hi")
  T.eq(r.ratelimit.requests.remaining, 9)
end)
