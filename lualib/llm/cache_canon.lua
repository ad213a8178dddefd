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
local concat, sort, type, mtype, fmt = table.concat, table.sort, type, math.type, string.format

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or fmt("\\u%04x", c:byte())
  end) .. '"'
end

local function number(x)
  if mtype(x) == "integer" then return fmt("%d", x) end
  if x ~= x then return '"NaN"' end
  if x == math.huge then return '"Infinity"' end
  if x == -math.huge then return '"-Infinity"' end
  local i = math.tointeger(x)
  if i then return fmt("%d", i) end -- 1.0 -> 1, -0.0 -> 0
  local s = fmt("%.15g", x)
  if tonumber(s) ~= x then s = fmt("%.17g", x) end
  return s
end

-- A sequence 1..n with no other keys (n > 0).
local function array_length(t)
  local n = #t
  if n == 0 then return nil end
  local count = 0
  for _ in pairs(t) do
    count = count + 1
    if count > n then return nil end
  end
  return count == n and n or nil
end

local encode

local function encode_table(t, out, depth)
  if depth > 64 then error("nested too deeply", 0) end
  local n = array_length(t)
  if n then
    out[#out + 1] = "["
    for i = 1, n do
      if i > 1 then out[#out + 1] = "," end
      encode(t[i], out, depth + 1)
    end
    out[#out + 1] = "]"
    return
  end
  local keys, names = {}, {}
  for k in pairs(t) do
    local kt = type(k)
    if kt ~= "string" and kt ~= "number" then
      error("a table key of type " .. kt, 0)
    end
    local name = kt == "string" and k or number(k)
    if names[name] ~= nil then error("two keys that both read as '" .. name .. "'", 0) end
    names[name] = k
    keys[#keys + 1] = name
  end
  sort(keys)
  out[#out + 1] = "{"
  for i, name in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = quote(name)
    out[#out + 1] = ":"
    encode(t[names[name]], out, depth + 1)
  end
  out[#out + 1] = "}"
end

encode = function(v, out, depth)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = quote(v)
  elseif t == "number" then
    out[#out + 1] = number(v)
  elseif t == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif v == nil or v == null then
    out[#out + 1] = "null"
  elseif t == "table" then
    encode_table(v, out, depth)
  else
    error("a value of type " .. t, 0)
  end
end

--- canonical(value) -> the canonical JSON text, or nil, why (a function,
-- a userdata, a cycle...: such a request is not cached).
function M.encode(value)
  local out = {}
  local ok, err = pcall(encode, value, out, 0)
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
  local b = {}
  for k, v in pairs(body) do
    if not delivery[k] then b[k] = v end
  end
  return M.encode {
    v = M.VERSION, kind = kind, provider = model.provider,
    endpoint = M.endpoint(model), model = model.name, body = b,
  }
end

return M
