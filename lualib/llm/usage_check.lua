-- The usage.check stage (llm.pipeline, the first finish-stage): the token
-- counts a server reported are checked once, for every provider, before
-- prices, budgets and the call log read them. Unusable usage is dropped:
-- r.usage = nil, r.usage_invalid = true, so the cost is unknown (nil),
-- never absurd; the call itself still succeeds.
local M = {}

-- Token counts above this are not a call's: a server bug or garbage.
M.MAX_TOKENS = 1e10

-- A whole number of tokens in 0..MAX_TOKENS (not negative, fractional,
-- 1e308, inf, nan, or not a number). Arithmetic only, no library call:
-- this runs for every field of every call (nan fails v >= 0).
local function is_count(v)
  return type(v) == "number" and v >= 0 and v <= M.MAX_TOKENS and v % 1 == 0
end

-- The usual fields first, in this order, so the warning names the same
-- field every time; then any other.
local FIELDS = { "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
                 "reasoning_tokens", "input_tokens", "cache_creation_tokens",
                 "cache_creation_1h_tokens" }

-- The first unusable field of usage u, with its value; nil when all are
-- fine (the common case: one pass, no naming).
local function bad_count(u)
  local fine, max = true, M.MAX_TOKENS
  for _, v in pairs(u) do
    if not (type(v) == "number" and v >= 0 and v <= max and v % 1 == 0) then
      fine = false
      break
    end
  end
  if fine then return nil end
  for _, k in ipairs(FIELDS) do
    local v = u[k]
    if v ~= nil and not is_count(v) then return k, v end
  end
  for k, v in pairs(u) do
    if not is_count(v) then return k, v end
  end
end

local warned = false

local function reject(call, t, field, value)
  t.usage = nil
  t.usage_invalid = true
  if warned then return end
  warned = true
  local m = call and call.model or {}
  local name = m.provider and m.name and (m.provider .. "/" .. m.name) or tostring(m.name or "a model")
  io.stderr:write(("llmrun: warning: the server's token usage for %s is unusable (%s = %s): "
    .. "such calls get no usage and an unknown cost (r.usage_invalid = true); "
    .. "reported once\n"):format(name, tostring(field),
      type(value) == "number" and ("%.17g"):format(value) or tostring(value)))
end

-- Drops t.usage (t: a response, or what a hit saved) when it is unusable.
local function check_one(call, t)
  local u = rawget(t, "usage")
  if u == nil then return true end
  local field, value
  if type(u) ~= "table" then field, value = "usage", u else field, value = bad_count(u) end
  if field == nil then return true end
  reject(call, t, field, value)
  return false
end

--- check(call, r) -> false when it dropped something: the usage of a
-- response (or a partial one) and of what a cache hit saved (r.saved.usage).
function M.check(call, r)
  if type(r) ~= "table" then return true end
  local fine = check_one(call, r)
  local saved = rawget(r, "saved")
  if type(saved) == "table" and not check_one(call, saved) then fine = false end
  return fine
end

--- The stage: fn(call, resp, err, partial).
function M.stage(call, resp, _err, partial)
  M.check(call, resp or partial)
end

return M
