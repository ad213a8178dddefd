-- JSON for llm.check: a strict decoder that keeps arrays and objects apart
-- (lua-cjson 2.1.0 decodes both [] and {} to the same empty table, so a
-- schema could not tell them apart), the extraction of a JSON document
-- from a model's answer (a ```json fence around it), and a validator for
-- a documented subset of JSON Schema.
--
-- Supported schema keywords (anything else is refused when the check is
-- made, never silently ignored):
--   type (a name or a list: object, array, string, number, integer,
--   boolean, null), properties, required, additionalProperties (boolean
--   or schema), items (one schema for every item), enum, const,
--   minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers),
--   minLength, maxLength, pattern (a Lua pattern, not a regex),
--   minItems, maxItems, uniqueItems, minProperties, maxProperties,
--   anyOf, allOf (lists of schemas), description, title, $schema
--   (ignored: documentation).
local M = {}

-- Decoded arrays and objects carry these metatables; JSON null is M.null.
M.ARRAY = { __name = "json array" }
M.OBJECT = { __name = "json object" }
M.null = setmetatable({}, { __name = "json null", __tostring = function() return "null" end })

-- ---- decoding -------------------------------------------------------------------------

local escapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function decode_error(s, pos, what)
  local line = 1
  for _ in s:sub(1, pos - 1):gmatch("\n") do line = line + 1 end
  error({ json_error = ("%s at line %d (byte %d)"):format(what, line, pos) }, 0)
end

local function skip(s, pos)
  return s:find("[^ \t\r\n]", pos) or #s + 1
end

local value

local function string_at(s, pos)
  local out, i = {}, pos + 1
  while true do
    local j = s:find('["\\%c]', i)
    if not j then decode_error(s, pos, "unterminated string") end
    out[#out + 1] = s:sub(i, j - 1)
    local c = s:sub(j, j)
    if c == '"' then return table.concat(out), j + 1 end
    if c ~= "\\" then decode_error(s, j, "control character in a string") end
    local e = s:sub(j + 1, j + 1)
    if escapes[e] then
      out[#out + 1] = escapes[e]
      i = j + 2
    elseif e == "u" then
      local hex = s:match("^%x%x%x%x", j + 2)
      if not hex then decode_error(s, j, "bad \\u escape") end
      local cp = tonumber(hex, 16)
      i = j + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local lo = s:match("^\\u(%x%x%x%x)", i)
        local low = lo and tonumber(lo, 16)
        if low and low >= 0xDC00 and low <= 0xDFFF then
          cp = 0x10000 + (cp - 0xD800) * 0x400 + (low - 0xDC00)
          i = i + 6
        else
          cp = 0xFFFD -- a lone surrogate, as browsers read it
        end
      elseif cp >= 0xDC00 and cp <= 0xDFFF then
        cp = 0xFFFD
      end
      out[#out + 1] = utf8.char(cp)
    else
      decode_error(s, j, "bad escape")
    end
  end
end

local function number_at(s, pos)
  local text = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  if not text or not text:match("^-?%d") or text:match("^-?0%d") or text:match("%.$")
     or text:match("[eE][-+]?$") or text:match("%.[eE]") then
    decode_error(s, pos, "bad number")
  end
  local n = tonumber(text)
  if not text:find("[.eE]") then n = math.tointeger(n) or n end
  return n, pos + #text
end

local function array_at(s, pos, depth)
  local arr = setmetatable({}, M.ARRAY)
  pos = skip(s, pos + 1)
  if s:sub(pos, pos) == "]" then return arr, pos + 1 end
  while true do
    local v
    v, pos = value(s, pos, depth)
    arr[#arr + 1] = v
    pos = skip(s, pos)
    local c = s:sub(pos, pos)
    if c == "]" then return arr, pos + 1 end
    if c ~= "," then decode_error(s, pos, "expected , or ] in an array") end
    pos = skip(s, pos + 1)
  end
end

local function object_at(s, pos, depth)
  local obj = setmetatable({}, M.OBJECT)
  pos = skip(s, pos + 1)
  if s:sub(pos, pos) == "}" then return obj, pos + 1 end
  while true do
    if s:sub(pos, pos) ~= '"' then decode_error(s, pos, "expected a string key") end
    local k
    k, pos = string_at(s, pos)
    pos = skip(s, pos)
    if s:sub(pos, pos) ~= ":" then decode_error(s, pos, "expected : after a key") end
    local v
    v, pos = value(s, skip(s, pos + 1), depth)
    obj[k] = v
    pos = skip(s, pos)
    local c = s:sub(pos, pos)
    if c == "}" then return obj, pos + 1 end
    if c ~= "," then decode_error(s, pos, "expected , or } in an object") end
    pos = skip(s, pos + 1)
  end
end

function value(s, pos, depth)
  depth = depth + 1
  if depth > 200 then decode_error(s, pos, "nested too deep") end
  local c = s:sub(pos, pos)
  if c == "{" then return object_at(s, pos, depth) end
  if c == "[" then return array_at(s, pos, depth) end
  if c == '"' then return string_at(s, pos) end
  if c == "-" or c:match("%d") then return number_at(s, pos) end
  if s:sub(pos, pos + 3) == "true" then return true, pos + 4 end
  if s:sub(pos, pos + 4) == "false" then return false, pos + 5 end
  if s:sub(pos, pos + 3) == "null" then return M.null, pos + 4 end
  if pos > #s then decode_error(s, pos, "unexpected end of input") end
  decode_error(s, pos, ("unexpected %q"):format(s:sub(pos, pos)))
end

--- decode(text) -> value | nil, message (arrays and objects carry M.ARRAY /
-- M.OBJECT metatables; null is M.null)
function M.decode(text)
  local ok, v = pcall(function()
    local val, pos = value(text, skip(text, 1), 0)
    pos = skip(text, pos)
    if pos <= #text then decode_error(text, pos, "text after the JSON value") end
    return val
  end)
  if ok then return v end
  if type(v) == "table" and v.json_error then return nil, v.json_error end
  error(v, 0)
end

--- The JSON document in a model's answer: the text inside a ``` fence
-- (```json or plain) when the answer has one, else the answer trimmed.
function M.extract(text)
  local fenced = text:match("```[%w_-]*[ \t]*\r?\n(.-)\r?\n?```")
  return ((fenced or text):match("^%s*(.-)%s*$"))
end

-- ---- the schema subset ------------------------------------------------------------------

local KEYWORDS = {}
for _, k in ipairs { "type", "properties", "required", "additionalProperties", "items", "enum", "const",
  "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern",
  "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties", "anyOf", "allOf",
  "description", "title", "$schema" } do KEYWORDS[k] = true end
local TYPES = { object = true, array = true, string = true, number = true, integer = true,
                boolean = true, null = true }

--- Raises (misuse) when schema uses a keyword outside the subset or is
-- malformed; path names where.
function M.check_schema(schema, path)
  path = path or "schema"
  if type(schema) ~= "table" then error(("%s must be a table"):format(path), 0) end
  for k, v in pairs(schema) do
    if not KEYWORDS[k] then
      error(("%s: keyword %q is not in the supported subset of JSON Schema (see llm.check_json)")
        :format(path, tostring(k)), 0)
    end
    if k == "type" then
      for _, t in ipairs(type(v) == "table" and v or { v }) do
        if not TYPES[t] then error(("%s.type: unknown type %q"):format(path, tostring(t)), 0) end
      end
    elseif k == "properties" then
      if type(v) ~= "table" then error(path .. ".properties must be a table", 0) end
      for name, sub in pairs(v) do M.check_schema(sub, path .. ".properties." .. tostring(name)) end
    elseif k == "items" or (k == "additionalProperties" and type(v) == "table") then
      M.check_schema(v, path .. "." .. k)
    elseif k == "anyOf" or k == "allOf" then
      if type(v) ~= "table" or #v == 0 then error(("%s.%s must be a non-empty list"):format(path, k), 0) end
      for i, sub in ipairs(v) do M.check_schema(sub, ("%s.%s[%d]"):format(path, k, i)) end
    elseif k == "required" or k == "enum" then
      if type(v) ~= "table" then error(("%s.%s must be a list"):format(path, k), 0) end
    end
  end
end

local function kind_of(v)
  if v == M.null then return "null" end
  local t = type(v)
  if t == "table" then return getmetatable(v) == M.ARRAY and "array" or "object" end
  if t == "number" then return (v == math.floor(v) and v == v and math.abs(v) < 2^63) and "integer" or "number" end
  return t
end

local function type_ok(want, kind)
  return want == kind or (want == "number" and kind == "integer")
end

local function equal(a, b)
  if a == b then return true end
  if type(a) == "table" and a ~= M.null and type(b) == "table" and b ~= M.null then
    for k, x in pairs(a) do if not equal(x, b[k]) then return false end end
    for k in pairs(b) do if a[k] == nil then return false end end
    return true
  end
  return false
end

local function show(v)
  local k = kind_of(v)
  if k == "string" then return ("%q"):format(#v > 40 and v:sub(1, 40) .. "..." or v) end
  if k == "object" or k == "array" then return "an " .. k end
  return tostring(v)
end

local validate

local function count_keys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- Returns nil when v conforms, else a message naming the path.
function validate(v, s, path)
  local kind = kind_of(v)
  if s.type ~= nil then
    local ok = false
    for _, t in ipairs(type(s.type) == "table" and s.type or { s.type }) do
      if type_ok(t, kind) then ok = true end
    end
    if not ok then
      local want = type(s.type) == "table" and table.concat(s.type, " or ") or s.type
      return ("%s: expected %s, got %s"):format(path, want, kind == "integer" and "number" or kind)
    end
  end
  if s.const ~= nil and not equal(v, s.const) then
    return ("%s: expected %s, got %s"):format(path, show(s.const), show(v))
  end
  if s.enum then
    local found = false
    for _, e in ipairs(s.enum) do if equal(v, e) then found = true end end
    if not found then
      local opts = {}
      for i, e in ipairs(s.enum) do opts[i] = show(e) end
      return ("%s: %s is not one of %s"):format(path, show(v), table.concat(opts, ", "))
    end
  end
  if kind == "integer" or kind == "number" then
    if s.minimum and v < s.minimum then return ("%s: %s is below the minimum %s"):format(path, v, s.minimum) end
    if s.maximum and v > s.maximum then return ("%s: %s is above the maximum %s"):format(path, v, s.maximum) end
    if s.exclusiveMinimum and v <= s.exclusiveMinimum then
      return ("%s: %s is not above %s"):format(path, v, s.exclusiveMinimum)
    end
    if s.exclusiveMaximum and v >= s.exclusiveMaximum then
      return ("%s: %s is not below %s"):format(path, v, s.exclusiveMaximum)
    end
  elseif kind == "string" then
    local n = utf8.len(v) or #v
    if s.minLength and n < s.minLength then return ("%s: shorter than %d characters"):format(path, s.minLength) end
    if s.maxLength and n > s.maxLength then return ("%s: longer than %d characters"):format(path, s.maxLength) end
    if s.pattern and not v:find(s.pattern) then
      return ("%s: %s does not match the pattern %s"):format(path, show(v), s.pattern)
    end
  elseif kind == "array" then
    if s.minItems and #v < s.minItems then return ("%s: fewer than %d items"):format(path, s.minItems) end
    if s.maxItems and #v > s.maxItems then return ("%s: more than %d items"):format(path, s.maxItems) end
    if s.items then
      for i, x in ipairs(v) do
        local e = validate(x, s.items, ("%s[%d]"):format(path, i - 1))
        if e then return e end
      end
    end
    if s.uniqueItems then
      for i = 1, #v do
        for j = i + 1, #v do
          if equal(v[i], v[j]) then return ("%s: items %d and %d are equal"):format(path, i - 1, j - 1) end
        end
      end
    end
  elseif kind == "object" then
    for _, name in ipairs(s.required or {}) do
      if v[name] == nil then return ("%s: the required property %q is missing"):format(path, name) end
    end
    local n = count_keys(v)
    if s.minProperties and n < s.minProperties then
      return ("%s: fewer than %d properties"):format(path, s.minProperties)
    end
    if s.maxProperties and n > s.maxProperties then
      return ("%s: more than %d properties"):format(path, s.maxProperties)
    end
    local names = {}
    for k in pairs(v) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do
      local sub = s.properties and s.properties[k]
      local p = path .. "." .. k
      if sub then
        local e = validate(v[k], sub, p)
        if e then return e end
      elseif s.additionalProperties == false then
        return ("%s: property %q is not allowed"):format(path, k)
      elseif type(s.additionalProperties) == "table" then
        local e = validate(v[k], s.additionalProperties, p)
        if e then return e end
      end
    end
  end
  if s.allOf then
    for _, sub in ipairs(s.allOf) do
      local e = validate(v, sub, path)
      if e then return e end
    end
  end
  if s.anyOf then
    local first
    for _, sub in ipairs(s.anyOf) do
      local e = validate(v, sub, path)
      if not e then first = nil break end
      first = first or e
    end
    if first then return ("%s: matches none of anyOf (first: %s)"):format(path, first) end
  end
  return nil
end

--- validate(value, schema) -> nil when it conforms, else a message such
-- as "$.items[2].price: expected number, got string"
function M.validate(v, schema)
  return validate(v, schema, "$")
end

return M
