-- The raw text of one value inside a JSON document, as it was sent.
--
--   at(text, path) -> raw | nil     path: a list of object keys and
--                                   1-based array indices
--
-- Why: a provider's tool arguments must reach the user byte for byte.
-- Decoding a document with lua-cjson and encoding a part again changes
-- it: [] becomes {}, long numbers lose digits, "/" becomes "\/". So the
-- parsers decode the document as usual, and take the text of the value
-- they hand on from the body itself with at().
--
-- The text is assumed to be valid JSON (the caller decoded it first);
-- on anything unexpected at() returns nil and the caller falls back to
-- re-encoding. A key that occurs twice resolves to its last occurrence,
-- as lua-cjson's decoder does.
local M = {}

local find, byte, sub = string.find, string.byte, string.sub

local QUOTE, BACKSLASH = 34, 92
local LBRACE, RBRACE, LBRACKET, RBRACKET = 123, 125, 91, 93
local COLON, COMMA = 58, 44

local function skip_ws(s, i)
  return find(s, "[^ \t\r\n]", i)
end

-- s[i] is the opening quote; returns the index after the closing one.
local function skip_string(s, i)
  local j = i + 1
  while true do
    local q = find(s, '["\\]', j)
    if not q then return nil end
    if byte(s, q) == QUOTE then return q + 1 end
    j = q + 2
  end
end

-- Returns the index just after the value starting at i.
local function skip_value(s, i)
  local c = byte(s, i)
  if c == QUOTE then return skip_string(s, i) end
  if c == LBRACE or c == LBRACKET then
    local depth, j = 0, i
    while true do
      local k = find(s, '["{}%[%]]', j)
      if not k then return nil end
      local ck = byte(s, k)
      if ck == QUOTE then
        j = skip_string(s, k)
        if not j then return nil end
      else
        depth = depth + ((ck == LBRACE or ck == LBRACKET) and 1 or -1)
        j = k + 1
        if depth == 0 then return j end
      end
    end
  end
  -- a number, true, false or null: up to the next delimiter
  local k = find(s, "[,}%] \t\r\n]", i)
  return k or #s + 1
end

local function key_text(s, i, j)
  local raw = sub(s, i + 1, j - 2)
  if not find(raw, "\\", 1, true) then return raw end
  local ok, v = pcall(require("cjson").decode, sub(s, i, j - 1))
  return ok and v or nil
end

-- The start of member `key` of the object at i (its last occurrence).
local function member(s, i, key)
  local found
  local j = skip_ws(s, i + 1)
  if j and byte(s, j) == RBRACE then return nil end
  while j do
    if byte(s, j) ~= QUOTE then return nil end
    local after = skip_string(s, j)
    if not after then return nil end
    local name = key_text(s, j, after)
    local colon = skip_ws(s, after)
    if not colon or byte(s, colon) ~= COLON then return nil end
    local v = skip_ws(s, colon + 1)
    if not v then return nil end
    if name == key then found = v end
    local e = skip_value(s, v)
    if not e then return nil end
    local sep = skip_ws(s, e)
    if not sep then return nil end
    local c = byte(s, sep)
    if c == RBRACE then return found end
    if c ~= COMMA then return nil end
    j = skip_ws(s, sep + 1)
  end
  return nil
end

-- The start of item n (1-based) of the array at i.
local function item(s, i, n)
  local j = skip_ws(s, i + 1)
  if not j or byte(s, j) == RBRACKET then return nil end
  for _ = 1, n - 1 do
    local e = skip_value(s, j)
    if not e then return nil end
    local sep = skip_ws(s, e)
    if not sep or byte(s, sep) ~= COMMA then return nil end
    j = skip_ws(s, sep + 1)
    if not j then return nil end
  end
  return j
end

--- at(text, path) -> the raw text of the value at path, or nil.
function M.at(text, path)
  if type(text) ~= "string" then return nil end
  local i = skip_ws(text, 1)
  for _, step in ipairs(path) do
    if not i then return nil end
    local c = byte(text, i)
    if type(step) == "string" and c == LBRACE then
      i = member(text, i, step)
    elseif math.type(step) == "integer" and c == LBRACKET and step >= 1 then
      i = item(text, i, step)
    else
      return nil
    end
  end
  if not i then return nil end
  local e = skip_value(text, i)
  if not e then return nil end
  return sub(text, i, e - 1)
end

return M
