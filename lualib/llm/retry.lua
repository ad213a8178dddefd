-- When and how long to wait before retrying a request, as the official
-- OpenAI and Anthropic SDKs do it (their shared Stainless base client;
-- see ../shared/RELIABILITY.md §C.1):
--   * retried: 408, 409, 429, every 5xx (so Anthropic's 529), connection
--     errors and timeouts; the server can force either way with
--     `x-should-retry: true|false`;
--   * 2 retries by default (3 attempts);
--   * the server's delay wins when 0 < delay <= 60 s: `retry-after-ms`,
--     then `retry-after` in seconds, then `retry-after` as an HTTP date;
--   * otherwise min(0.5 * 2^n, 8) * (1 - 0.25 * U) seconds for retry n+1.
-- llmrun's own rule: a 429 whose error says the quota or spend limit is
-- used up (`insufficient_quota`, `enforced_spend_limit_reached`) is not
-- retried: waiting cannot fix it.
local http = require "_llm.http"

local M = {}

M.DEFAULT_MAX_RETRIES = 2
M.INITIAL_DELAY = 0.5
M.MAX_DELAY = 8.0
M.MAX_SERVER_DELAY = 60.0

local quota_codes = {
  insufficient_quota = true,
  enforced_spend_limit_reached = true,
}

--- Is this error body one of "the money is gone"? (err: parsed fields)
function M.is_quota_exhausted(status, fields)
  if status ~= 429 or not fields then return false end
  if quota_codes[fields.code] or quota_codes[fields.type] then return true end
  local msg = type(fields.message) == "string" and fields.message or ""
  for code in pairs(quota_codes) do
    if msg:find(code, 1, true) then return true end
  end
  return false
end

--- The delay the server asked for, in seconds, or nil.
function M.server_delay(headers, now_epoch)
  if not headers then return nil end
  local ms = tonumber(headers["retry-after-ms"])
  if ms then return ms / 1000 end
  local ra = headers["retry-after"]
  if ra == nil then return nil end
  local s = tonumber(ra)
  if s then return s end
  local t = http.parse_date(ra)
  if t then return t - (now_epoch or os.time()) end
  return nil
end

--- Should a response with this status (and headers) be retried?
function M.should_retry_status(status, headers)
  local forced = headers and headers["x-should-retry"]
  if forced == "true" then return true end
  if forced == "false" then return false end
  return status == 408 or status == 409 or status == 429 or status >= 500
end

--- Seconds to wait before retry number `retries_done + 1`.
-- rand: a function returning [0, 1) (math.random by default).
function M.delay(retries_done, headers, rand, now_epoch)
  local d = M.server_delay(headers, now_epoch)
  if d and d > 0 and d <= M.MAX_SERVER_DELAY then return d end
  local base = math.min(M.INITIAL_DELAY * 2 ^ retries_done, M.MAX_DELAY)
  return base * (1 - 0.25 * (rand or math.random)())
end

--- Delays can be scaled down for tests: LLMRUN_RETRY_SCALE=0.01.
M.scale = tonumber(os.getenv("LLMRUN_RETRY_SCALE") or "") or 1

return M
