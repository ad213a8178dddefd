-- The canonical form of a request, which the cache hashes into its key.
--
-- Two requests get the same key exactly when they ask the same thing of
-- the same model at the same endpoint: a JSON text with object keys in
-- byte order, no spaces, strings escaped one way only, and numbers written
-- one way only (1, 1.0 and 1e0 are all "1"; other floats in the shortest
-- form that reads back as the same double). Tables that are sequences are
-- arrays; any other table is an object (an empty table is "{}"). API keys,
-- headers, timeouts and call options are not part of a request here, so
-- they never reach the key or the database.
local cjson = require "cjson"

local M = {}

-- Bump when the canonical form changes: old entries then simply miss.
M.VERSION = 1

local null = cjson.null
local concat, sort, type, mtype, fmt, find, gsub = table.concat, table.sort, type, math.type,
  string.format, string.find, string.gsub
local pairs, tointeger, tostring = pairs, math.tointeger, tostring

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function escape(c) return escapes[c] or fmt("\\u%04x", c:byte()) end

local function quote(s)
  if not find(s, '[%c"\\]') then return '"' .. s .. '"' end -- the usual case
  return '"' .. gsub(s, '[%c"\\]', escape) .. '"'
end

local function number(x)
  if mtype(x) == "integer" then return tostring(x) end
  if x ~= x then return '"NaN"' end
  if x == math.huge then return '"Infinity"' end
  if x == -math.huge then return '"-Infinity"' end
  local i = tointeger(x)
  if i then return tostring(i) end -- 1.0 -> 1, -0.0 -> 0
  local s = fmt("%.15g", x)
  if tonumber(s) ~= x then s = fmt("%.17g", x) end
  return s
end

local encode

-- out: the pieces so far, n: their count; returns the new count.
local function encode_table(t, out, n, depth)
  if depth > 64 then error("nested too deeply", 0) end
  local len = #t
  local keys, nkeys, numeric = nil, 0, false
  for k in pairs(t) do
    nkeys = nkeys + 1
    if nkeys > len or mtype(k) ~= "integer" or k < 1 or k > len then
      -- not a sequence: an object
      keys = keys or {}
      local kt = type(k)
      if kt == "number" then numeric = true
      elseif kt ~= "string" then error("a table key of type " .. kt, 0) end
    end
  end
  if not keys and nkeys == len and len > 0 then
    n = n + 1; out[n] = "["
    for i = 1, len do
      if i > 1 then n = n + 1; out[n] = "," end
      n = encode(t[i], out, n, depth + 1)
    end
    n = n + 1; out[n] = "]"
    return n
  end
  local names, i = {}, 0
  local by_name = numeric and {} or nil
  for k in pairs(t) do
    i = i + 1
    local name = k
    if type(k) == "number" then
      name = number(k)
      if t[name] ~= nil or by_name[name] ~= nil then
        error("two keys that both read as '" .. name .. "'", 0)
      end
      by_name[name] = k
    end
    names[i] = name
  end
  sort(names)
  n = n + 1; out[n] = "{"
  for j = 1, i do
    local name = names[j]
    n = n + 1; out[n] = (j > 1 and "," or "") .. quote(name) .. ":"
    local key = by_name and by_name[name]
    if key == nil then key = name end
    n = encode(t[key], out, n, depth + 1)
  end
  n = n + 1; out[n] = "}"
  return n
end

encode = function(v, out, n, depth)
  local t = type(v)
  if t == "string" then
    n = n + 1; out[n] = quote(v)
  elseif t == "number" then
    n = n + 1; out[n] = number(v)
  elseif t == "table" then
    n = encode_table(v, out, n, depth)
  elseif t == "boolean" then
    n = n + 1; out[n] = v and "true" or "false"
  elseif v == nil or v == null then
    n = n + 1; out[n] = "null"
  else
    error("a value of type " .. t, 0)
  end
  return n
end

--- canonical(value) -> the canonical JSON text, or nil, why (a function,
-- a userdata, a cycle...: such a request is not cached).
function M.encode(value)
  local out = {}
  local ok, err = pcall(encode, value, out, 0, 0)
  if not ok then return nil, "cannot be cached: " .. tostring(err) end
  return concat(out)
end

-- Body fields that change how the answer is delivered, not what it is:
-- a streamed and a buffered request share their cache entry.
local delivery = { stream = true, stream_options = true }

--- The endpoint part of the identity. The simulator's port changes with
-- every run, so its URL is left out: its answers depend on the request.
function M.endpoint(model)
  if model.simulated then return "sim" end
  return model.cfg and model.cfg.base_url or ""
end

--- "provider endpoint name": one model at one endpoint (for embeddings).
function M.model_identity(model)
  return model.provider .. " " .. M.endpoint(model) .. " " .. model.name
end

--- The canonical text of a chat request (kind "chat", shared by m:chat and
-- m:stream) or an embedding request (kind "embed"): provider, endpoint,
-- model, and every body parameter. nil, why when it cannot be cached.
function M.request(model, kind, body)
  local b = body
  if body.stream ~= nil or body.stream_options ~= nil then
    b = {}
    for k, v in pairs(body) do
      if not delivery[k] then b[k] = v end
    end
  end
  local text, err = M.encode(b)
  if not text then return nil, err end
  -- the same as encoding {body=, endpoint=, kind=, model=, provider=, v=}
  return '{"body":' .. text .. ',"endpoint":' .. quote(M.endpoint(model)) .. ',"kind":'
    .. quote(kind) .. ',"model":' .. quote(model.name) .. ',"provider":'
    .. quote(model.provider) .. ',"v":' .. M.VERSION .. "}"
end

return M
