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
local M = {}

-- Bump when the canonical form changes: old entries then simply miss.
M.VERSION = 1

local find, gsub, fmt = string.find, string.gsub, string.format

--- canonical(value) -> the canonical JSON text, or nil, why (a function,
-- a userdata, a cycle...: such a request is not cached). In C
-- (src/lmod_canon.c), as it runs on every cached call.
M.encode = require("_llm.canon").encode

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function escape(c) return escapes[c] or fmt("\\u%04x", c:byte()) end

-- A string as M.encode writes it (for the few fixed fields below).
local function quote(s)
  if not find(s, '[%c"\\]') then return '"' .. s .. '"' end
  return '"' .. gsub(s, '[%c"\\]', escape) .. '"'
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

-- The part of a request's text after its body, for one model and kind:
-- made once per model (the same for each of its calls), and made again if
-- the model's name, provider or endpoint has changed since.
local tails = setmetatable({}, { __mode = "k" }) -- model -> kind -> {endpoint, name, provider, text}

local function tail(model, kind)
  local endpoint, name, provider = M.endpoint(model), model.name, model.provider
  local per = tails[model]
  local t = per and per[kind]
  if t and t[1] == endpoint and t[2] == name and t[3] == provider then return t[4] end
  local text = ',"endpoint":' .. quote(endpoint) .. ',"kind":' .. quote(kind) .. ',"model":'
    .. quote(name) .. ',"provider":' .. quote(provider) .. ',"v":' .. M.VERSION .. "}"
  if not per then
    per = {}
    tails[model] = per
  end
  per[kind] = { endpoint, name, provider, text }
  return text
end

--- The part of the canonical text after the body for one model and kind
-- (its identity: endpoint, kind, model, provider, version), the same
-- string while the model's fields stay the same.
M.identity = tail

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
  return '{"body":' .. text .. tail(model, kind)
end

return M
