-- Small pieces every wire format needs.
local cjson = require "cjson"
local errors = require "llm.errors"
local loop = require "_llm.loop"
local ratelimit_headers = require "llm.ratelimit_headers"
local retry = require "llm.retry"
local untrusted = require "llm.untrusted"

local M = {}

local null = cjson.null

-- llm.replay sets this to the recording's provider environment (base
-- URLs, whether keys were set), so models resolve as they did when the
-- cassette was recorded: name -> value, or false for "unset".
M.env_override = nil

--- An environment variable, with "" counted as unset.
function M.env(name)
  local o = M.env_override
  if o and o[name] ~= nil then return o[name] or nil end
  local v = os.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

--- Is this URL's host the local machine (localhost, 127.0.0.0/8, ::1)?
function M.is_loopback(url)
  local host = tostring(url):match("^%a[%w+.-]*://([^/?#]*)") or ""
  host = host:gsub("^.*@", ""):lower()
  if host:match("^%[::1%]") then return true end
  host = host:gsub(":%d*$", "")
  return host == "localhost" or host:match("%.localhost$") ~= nil
    or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

M.snippet = untrusted.snippet

--- The llm.error of a non-2xx reply {status, headers, body}, from the
-- fields a provider's parse_error read in its body (nil when it found
-- none: the message is then the body's first 300 characters).
function M.http_error(res, fields)
  local h = res.headers or {}
  local e = {
    status = res.status,
    request_id = h["x-request-id"] or h["request-id"],
    retry_after = retry.server_delay(h),
    -- the limits the server reported, for pacing: {requests=, tokens=, ...}
    ratelimit = ratelimit_headers.parse(h, loop.wallclock()),
  }
  if fields then
    e.type, e.code, e.param = fields.type, fields.code, fields.param
  end
  local message = fields and fields.message
  if not message or message == "" then
    local s = untrusted.snippet(res.body, 300)
    message = s ~= "" and s or "(empty body)"
  end
  if retry.is_quota_exhausted(res.status, fields) then e.quota_exhausted = true end
  return errors.new("http", message, e)
end

--- A format's http_error: its own parse_error read by M.http_error.
function M.http_error_of(parse_error)
  return function(res)
    return M.http_error(res, parse_error and parse_error(res.status, res.body) or nil)
  end
end

--- parse_safely(fn, ...) -> fn's results | nil, err: a provider's parser
-- meeting valid JSON of an unexpected shape (a number where text belongs)
-- must not raise into the user's code; for the call it is a runtime
-- failure, returned as a "parse" error.
function M.parse_safely(fn, ...)
  local ok, a, b = pcall(fn, ...)
  if ok then return a, b end
  return nil, errors.new("parse", "unexpected response shape: " .. tostring(a))
end

--- JSON null (cjson.null) as nil.
function M.nonnull(v)
  if v == null then return nil end
  return v
end

--- Appends the model's extra headers ({Name = value}) to the list h,
-- sorted by name so requests are reproducible; a value with a line break
-- (header injection) is misuse.
function M.add_headers(h, extra)
  if not extra then return h end
  local names = {}
  for k in pairs(extra) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = tostring(extra[k])
    if v:find("[\r\n]") or tostring(k):find("[\r\n:]") then
      error(("header %s contains a line break or a colon in its name"):format(k), 4)
    end
    h[#h + 1] = k .. ": " .. v
  end
  return h
end

--- An answer's text is a string, whatever JSON type the server used for
-- it ({"content": 42} is "42", not the number 42 or "42.0"); anything
-- else (null, an object) is no text.
function M.text(v)
  if type(v) == "string" then return v end
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2^53 then
    return ("%d"):format(v)
  end
  if type(v) == "number" or type(v) == "boolean" then return tostring(v) end
  return ""
end

return M
