-- What differs between two requests (decoded canonical forms), as
-- readable lines: for a replayed request that has no recording (the
-- nearest recorded one and how it differs) and `llmrun cassette diff`.
--
--   diff(recorded, now, path, out, max) -> out: up to max lines such as
--     body.messages[2].content: recorded "...Question: What" , now "...Question: Who" (from byte 812)
--     body.temperature: recorded 0, now 0.7
--   with out.n the number of differing places (all of them)
local canon = require "llm.cache_canon"

local M = {}

local function short(v)
  if type(v) == "string" then
    local s = v
    if #s > 60 then s = s:sub(1, 57) .. "..." end
    return (("%q"):format(s):gsub("\\\n", "\\n"))
  end
  if v == nil then return "(absent)" end
  local ok, text = pcall(canon.encode, v)
  text = ok and text or tostring(v)
  if #text > 60 then text = text:sub(1, 57) .. "..." end
  return text
end

-- Two strings around the first byte where they differ.
local function string_diff(a, b, la, lb)
  local i = 1
  while i <= #a and i <= #b and a:byte(i) == b:byte(i) do i = i + 1 end
  local from = math.max(1, i - 25)
  local function cut(s)
    local piece = s:sub(from, i + 35)
    return (("%s%q%s"):format(from > 1 and "..." or "", piece, i + 35 < #s and "..." or ""):gsub("\\\n", "\\n"))
  end
  return ("%s %s, %s %s (from byte %d)"):format(la, cut(a), lb, cut(b), i)
end

-- Differing paths of two decoded values, up to max (counts all in n).
-- labels: the words for a and b (default "recorded", "now").
function M.diff(a, b, path, out, max, labels)
  if type(a) == "table" and type(b) == "table" then
    local keys, seen = {}, {}
    for k in pairs(a) do keys[#keys + 1] = k seen[k] = true end
    for k in pairs(b) do if not seen[k] then keys[#keys + 1] = k end end
    table.sort(keys, function(x, y) return tostring(x) < tostring(y) end)
    for _, k in ipairs(keys) do
      local p = math.type(k) == "integer" and (path .. "[" .. k .. "]")
        or (path == "" and tostring(k) or (path .. "." .. tostring(k)))
      M.diff(a[k], b[k], p, out, max, labels)
    end
    return out
  end
  if a == b then return out end
  out.n = out.n + 1
  if #out < max then
    local la, lb = (labels or {})[1] or "recorded", (labels or {})[2] or "now"
    if type(a) == "string" and type(b) == "string" then
      out[#out + 1] = path .. ": " .. string_diff(a, b, la, lb)
    else
      out[#out + 1] = ("%s: %s %s, %s %s"):format(path, la, short(a), lb, short(b))
    end
  end
  return out
end

return M
