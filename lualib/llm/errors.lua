-- Typed errors. A runtime failure returns `nil, err` where err is
-- {kind=, message=, status=, retry_after=, request_id=, ...} and prints
-- readably. Kinds: timeout, http, transport, parse, cancelled, provider,
-- budget. The metatable is shared with C (the scheduler's "cancelled"
-- errors use it too).
local loop = require "_llm.loop"
local untrusted = require "llm.untrusted"

local M = {}
local mt = loop.error_metatable

mt.__name = "llm.error"
-- Messages and request ids often come from a server: escaped, so that
-- printing an error cannot drive the terminal (llm.untrusted).
mt.__tostring = function(e)
  local parts = { tostring(e.kind or "error") }
  -- an HTTP status is a number; other modules' statuses ("io", "busy")
  -- are not labelled HTTP
  if type(e.status) == "number" then
    parts[#parts + 1] = "HTTP " .. tostring(e.status)
  elseif e.status ~= nil then
    parts[#parts + 1] = tostring(e.status)
  end
  local s = table.concat(parts, " ")
  if e.message and e.message ~= "" then s = s .. ": " .. tostring(e.message) end
  if e.request_id then s = s .. " (request " .. tostring(e.request_id) .. ")" end
  return untrusted.escape(s)
end

-- A message that is not a string (a server sent {"message": {...}}) is
-- kept as readable text: JSON for a table, else its tostring.
local function as_text(v)
  if type(v) == "table" then
    local ok, text = pcall(require("cjson").encode, v)
    if ok then return text end
  end
  return tostring(v)
end

--- llm.error(kind, message [, fields]) -> a typed error table. Secrets
-- (API keys, sk- shaped tokens) in its string fields are masked: error
-- text often quotes a server.
function M.new(kind, message, fields)
  if type(kind) ~= "string" then
    error("bad argument #1 to 'llm.error' (string expected, got " .. type(kind) .. ")", 2)
  end
  local e = {}
  if fields then
    for k, v in pairs(fields) do e[k] = type(v) == "string" and untrusted.mask(v) or v end
  end
  if message ~= nil and type(message) ~= "string" then message = as_text(message) end
  e.kind, e.message = kind, untrusted.mask(message)
  return setmetatable(e, mt)
end

function M.is(v, kind)
  return getmetatable(v) == mt and (kind == nil or v.kind == kind)
end

-- llm.exit(code): end the script now with this exit status. It unwinds
-- like an error, so it is caught by a pcall around it.
local exit_mt = loop.exit_metatable
exit_mt.__tostring = function(e) return "exit " .. tostring(e.code) end

function M.exit(code)
  code = code == nil and 0 or code
  if code == true then code = 0 elseif code == false then code = 1 end
  if math.type(code) ~= "integer" or code < 0 or code > 255 then
    error("bad argument #1 to 'llm.exit' (integer 0-255 expected)", 2)
  end
  error(setmetatable({ code = code }, exit_mt), 0)
end

return M
