-- Rate-limit headers -> one table, the same for OpenAI and Anthropic.
--
--   parse(headers, now) -> {requests = {limit=, remaining=, reset=, reset_at=},
--                           tokens = {...}, input_tokens = {...},
--                           output_tokens = {...}} | nil (no such header)
--
-- headers: {name = value} (any case). now: the wall clock in epoch
-- seconds (loop.wallclock()), used for absolute resets. Only the kinds
-- the response names are present, and within a kind only the fields it
-- sent. reset is in seconds from now (never negative); reset_at = now +
-- reset, so a pacer that reads it later needs no clock of its own.
--
-- Formats (RELIABILITY.md §C.2; real recordings in tests/fixtures/providers):
--   * OpenAI: x-ratelimit-{limit,remaining,reset}-{requests,tokens}; resets
--     are Go-style durations: "6m0s", "20ms", "1s", "1m26.4s", "0s".
--     Some OpenAI-compatible servers send a bare number of seconds.
--   * Anthropic: anthropic-ratelimit-{requests,tokens,input-tokens,
--     output-tokens}-{limit,remaining,reset}; resets are RFC 3339 times
--     ("2026-04-05T10:23:54Z").
-- Used by llm.model (r.ratelimit, err.ratelimit) and meant for pacing.
local M = {}

local KINDS = { requests = "requests", tokens = "tokens",
                ["input-tokens"] = "input_tokens", ["output-tokens"] = "output_tokens" }

local byte = string.byte

local UNIT = { h = 3600, m = 60, s = 1, ms = 1e-3, us = 1e-6, ["µs"] = 1e-6, ns = 1e-9 }

--- "1h2m3.5s" / "20ms" / "7.66s" / "3" -> seconds, or nil.
function M.duration(s)
  if type(s) ~= "string" then return nil end
  s = s:match("^%s*(.-)%s*$")
  local bare = tonumber(s)
  if bare then return bare >= 0 and bare or nil end
  local total, pos, any = 0, 1, false
  while pos <= #s do
    local num, unit, nxt = s:match("^(%d*%.?%d+)(%a+)()", pos)
    if not num then
      num, unit, nxt = s:match("^(%d*%.?%d+)(µs)()", pos)
    end
    if not num or not UNIT[unit] then return nil end
    total = total + tonumber(num) * UNIT[unit]
    pos, any = nxt, true
  end
  return any and total or nil
end

-- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
-- days_from_civil), so no time zone of this machine is involved.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

--- "2026-04-05T10:23:54Z" / "...54.5+02:00" -> epoch seconds, or nil.
function M.rfc3339(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, rest = s:match("^%s*(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d%.?%d*)(.-)%s*$")
  if not y then return nil end
  local offset = 0
  if rest == "Z" or rest == "z" then
    offset = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  local days = days_from_civil(tonumber(y), tonumber(mo), tonumber(d))
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec) - offset
end

-- A reset value in either format -> seconds from now (>= 0), or nil.
local function reset_seconds(v, now)
  local d = M.duration(v)
  if d then return d end
  local at = M.rfc3339(v)
  if at and now then return math.max(0, at - now) end
  return nil
end

local function number(v)
  local n = tonumber(v)
  if n and n == n and n ~= math.huge and n ~= -math.huge then return math.tointeger(n) or n end
  return nil
end

local function slot(out, kind)
  local t = out[kind]
  if not t then
    t = {}
    out[kind] = t
  end
  return t
end

--- parse(headers, now) -> table | nil (see the top of this file).
function M.parse(headers, now)
  if type(headers) ~= "table" then return nil end
  local out, any = nil, false
  for name, value in pairs(headers) do
    -- every call reads its headers: the first letter (x-ratelimit-...,
    -- anthropic-ratelimit-...) rules most out before any lower-casing
    local b, b4
    if type(name) == "string" then b, b4 = byte(name, 1), byte(name, 4) end
    if ((b == 120 or b == 88) and (b4 == 97 or b4 == 65)) -- x-ra..., X-Ra...
        or b == 97 or b == 65 then                          -- anthropic-...
      name = name:lower()
      local field, kind = name:match("^x%-ratelimit%-(%a+)%-([%a%-]+)$")
      if not field then
        kind, field = name:match("^anthropic%-ratelimit%-([%a%-]+)%-(%a+)$")
      end
      local key = kind and KINDS[kind]
      if key and (field == "limit" or field == "remaining" or field == "reset") then
        local v
        if field == "reset" then v = reset_seconds(value, now) else v = number(value) end
        if v then
          out = out or {}
          local t = slot(out, key)
          t[field] = v
          if field == "reset" and now then t.reset_at = now + v end
          any = true
        end
      end
    end
  end
  return any and out or nil
end

-- Header name -> could it be a rate-limit header (its name says
-- "ratelimit", in any case)? Most responses have none, and the names
-- repeat: the answer is kept per name (a bounded number of them), so a
-- response without one costs a few lookups, no parse and no clock read.
local maybe_ratelimit, maybe_n = {}, 0
local function has_ratelimit_header(headers)
  for name in pairs(headers) do
    local m = maybe_ratelimit[name]
    if m == nil then
      m = type(name) == "string" and name:lower():find("ratelimit", 1, true) ~= nil
      if maybe_n < 512 then
        maybe_ratelimit[name] = m
        maybe_n = maybe_n + 1
      end
    end
    if m then return true end
  end
  return false
end

--- of(headers, wallclock) -> table | nil: M.parse of a response's headers,
-- with wallclock() (seconds) read only when a header may be one.
function M.of(headers, wallclock)
  if type(headers) ~= "table" or not has_ratelimit_header(headers) then return nil end
  return M.parse(headers, wallclock())
end

return M
