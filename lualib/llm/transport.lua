-- One logical HTTP request: attempts, retries and error mapping.
--
-- request(spec) sends a buffered request; open_stream(spec) sends a
-- streaming one and returns once a 2xx response has started. Both retry
-- per llm.retry while nothing of the response has been handed to the
-- caller; a stream that fails after that is never retried (the caller
-- keeps the partial text). Every attempt of one logical request carries
-- the same Idempotency-Key header.
--
-- spec: {method, url, headers (list of "Name: value"), body (string),
--        timeout, connect_timeout, stall_timeout, max_retries, retry_scale,
--        framing, parse_error = function(status, body) -> fields, provider,
--        call = the llm.calls record, whose `retries` is kept up to date}
local http = require "_llm.http"
local retry = require "llm.retry"
local errors = require "llm.errors"
local loop = require "_llm.loop"
local untrusted = require "llm.untrusted"
local ratelimit_headers = require "llm.ratelimit_headers"

local M = {}

-- ---- URLs ------------------------------------------------------------------

-- Where each provider's base URL may come from, for the message.
local url_sources = {
  openai = "OPENAI_BASE_URL", anthropic = "ANTHROPIC_BASE_URL", ollama = "OLLAMA_HOST",
}

--- Raises (misuse) unless url is an http:// or https:// URL with a host:
-- a base URL of file:///etc/passwd or dict://host must never be used,
-- and a malformed one is a mistake to fix, not a failure to retry.
-- source: "base_url", or the provider's name (its variable is named).
function M.check_base_url(url, source, level)
  local bad
  if type(url) ~= "string" then
    bad = "is missing"
  elseif not url:match("^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]") then
    bad = "is not an http:// or https:// URL"
  elseif url:find("[%z\1-\32\127]") then
    bad = "contains a space or a control character"
  end
  if bad then
    local from = source == "base_url" and "base_url" or url_sources[source] or "the base URL"
    local shown = type(url) == "string" and (" '" .. untrusted.escape(url) .. "'") or ""
    error(("llm.model: the base URL%s (from %s) %s"):format(shown, from, bad), (level or 1) + 1)
  end
end

-- ---- debug log (LLMRUN_DEBUG=1): one line per request and response ------

local debug_on = (os.getenv("LLMRUN_DEBUG") or "") ~= "" and os.getenv("LLMRUN_DEBUG") ~= "0"

local sensitive = { authorization = true, ["x-api-key"] = true, ["api-key"] = true,
                    ["proxy-authorization"] = true }

--- Is this header name one that carries a credential?
function M.is_secret_header(name)
  return sensitive[name:lower()] == true
end

--- Header lines with secrets replaced by <redacted>.
function M.redact(lines)
  local out = {}
  for i, line in ipairs(lines) do
    local name = line:match("^([^:]+):")
    if name and sensitive[name:lower()] then
      out[i] = name .. ": <redacted>"
    else
      out[i] = line
    end
  end
  return out
end

-- a debug line quotes servers (error messages): masked and escaped
local function log(fmt, ...)
  if debug_on then io.stderr:write("llmrun: ", untrusted.clean(fmt:format(...)), "\n") end
end

-- ---- errors ----------------------------------------------------------------------

local function snippet(body)
  body = tostring(body or ""):gsub("%s+", " ")
  if #body > 300 then body = body:sub(1, 300) .. "..." end
  return body
end

--- Builds the llm.error for a non-2xx response.
function M.http_error(res, parse_error)
  local fields = parse_error and parse_error(res.status, res.body) or nil
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
    local s = snippet(res.body)
    message = s ~= "" and s or "(empty body)"
  end
  if retry.is_quota_exhausted(res.status, fields) then e.quota_exhausted = true end
  return errors.new("http", message, e)
end

-- Accounts whose quota ran out: later calls fail at once. An account is
-- a host plus a hash of the API key (so two keys on one host are two
-- accounts, and the key itself is never kept here).
local exhausted = {}

local function fnv1a(s)
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  return h
end

local function quota_key(spec)
  local host = spec.url:match("^(https?://[^/]+)") or spec.url
  return ("%s#%08x"):format(host, fnv1a(spec.account or ""))
end

-- Only a run where some account ran out pays for computing the key.
local function exhausted_for(spec)
  if next(exhausted) == nil then return nil end
  return exhausted[quota_key(spec)]
end

--- Forget quota exhaustion (after a top-up, or between tests).
function M.reset_quota_flags()
  exhausted = {}
end

-- ---- the send stage's taps (llm.record, llm.replay) -------------------------------

-- A tap sees every attempt of a logical request, and may redirect or
-- answer it: tap(spec, send) -> a send function for this request, or nil
-- to stay out of it, or nil, err to fail the request unsent. send(kind,
-- req, n) makes attempt n (0 first): kind "request" or "stream", req the
-- table for _llm.http (a tap changes a copy), and it returns what
-- http.request / http.stream return. Taps chain by priority: the lowest
-- is nearest the caller (llm.record, 10: it sees what the caller sees),
-- the highest nearest the network (llm.replay, 90).
local taps = {}

local function http_send(kind, req)
  return http[kind](req)
end

function M.add_tap(name, fn, priority)
  M.remove_tap(name)
  taps[#taps + 1] = { name = name, fn = fn, priority = priority or 50 }
  table.sort(taps, function(a, b) return a.priority < b.priority end)
end

function M.remove_tap(name)
  for i, t in ipairs(taps) do
    if t.name == name then table.remove(taps, i) return end
  end
end

-- The send function for one logical request (the bare HTTP one when no
-- tap is installed: the common case costs one comparison).
local function sender(spec)
  if #taps == 0 then return http_send end
  local send = http_send
  for i = #taps, 1, -1 do
    local s, err = taps[i].fn(spec, send)
    if err then return nil, err end
    if s then send = s end
  end
  return send
end

-- ---- attempts ----------------------------------------------------------------------

local function idempotency_key()
  return ("llmrun-%08x%08x%08x%08x"):format(math.random(0, 0xffffffff), math.random(0, 0xffffffff),
    math.random(0, 0xffffffff), math.random(0, 0xffffffff))
end


-- Runs attempt(key_line, send, n) until it succeeds, fails for good, or
-- retries run out. attempt returns ok_value, or nil, err, retryable,
-- response_headers.
local function with_retries(spec, attempt)
  local gone = exhausted_for(spec)
  if gone then
    return nil, errors.new("http", gone.message, {
      status = 429, code = gone.code, quota_exhausted = true, retries = 0 })
  end
  local send, serr = sender(spec) -- before the scale: a tap may set spec.retry_scale
  if not send then
    serr.retries = 0
    return nil, serr
  end
  local max_retries = spec.max_retries or retry.DEFAULT_MAX_RETRIES
  local scale = spec.retry_scale or retry.scale
  -- the same key on every attempt of this logical request
  local key_line = "Idempotency-Key: " .. idempotency_key()
  for n = 0, max_retries do
    local t0 = loop.now()
    if spec.call then spec.call.retries = n end -- counted even if cancelled now
    if debug_on then
      log("-> %s %s (attempt %d) [%s; %s]", spec.method or "GET", spec.url, n + 1,
          table.concat(M.redact(spec.headers or {}), "; "), key_line)
    end
    local value, err, retryable, rheaders = attempt(key_line, send, n)
    if value then
      log("<- %s %s ok in %.0f ms", spec.method or "GET", spec.url, (loop.now() - t0) * 1000)
      return value, n
    end
    log("<- %s %s failed in %.0f ms: %s", spec.method or "GET", spec.url,
        (loop.now() - t0) * 1000, tostring(err))
    err.retries = n
    if err.quota_exhausted then
      exhausted[quota_key(spec)] = { message = err.message, code = err.code }
      return nil, err
    end
    if not retryable or n == max_retries then return nil, err end
    loop.sleep(retry.delay(n, rheaders) * scale)
  end
end

--- Buffered request -> response table (status, headers, body, t_*) and
-- the number of retries, or nil, err.
function M.request(spec)
  return with_retries(spec, function(key_line, send, n)
    local res, err = send("request", {
      method = spec.method, url = spec.url, headers = spec.headers, extra_header = key_line,
      body = spec.body,
      timeout = spec.timeout, connect_timeout = spec.connect_timeout,
      max_body = spec.max_body, insecure = spec.insecure, ca_file = spec.ca_file,
    }, n)
    if not res then
      return nil, err, err.kind ~= "cancelled" and err.retryable ~= false
    end
    if res.status >= 200 and res.status < 300 then return res end
    local e = M.http_error(res, spec.parse_error)
    return nil, e, retry.should_retry_status(res.status, res.headers), res.headers
  end)
end

--- "200 text/html: <!DOCTYPE html>...": what a stream request got, for
-- messages (head: a stream's head, with first_bytes; body: more of it).
function M.describe_reply(head, body)
  local ctype = head.headers and head.headers["content-type"] or "no content type"
  local s = snippet(body or head.first_bytes or "")
  return ("%s %s: %s"):format(head.status or "?", ctype, s ~= "" and s or "(empty body)")
end

-- A 2xx answer to a stream request that is plainly not an event stream
-- (an HTML page from a proxy, a JSON answer from a server that ignored
-- "stream": true) -> a parse error saying what came back, else nil.
-- Other content types, and a JSON- or HTML-labelled body that starts like
-- SSE, are read as a stream (some servers mislabel theirs).
function M.not_a_stream(s)
  local head = s:head()
  local ctype = (head.headers["content-type"] or ""):lower()
  if ctype:find("event-stream", 1, true) or not (ctype:find("json", 1, true)
      or ctype:find("html", 1, true) or ctype:find("xml", 1, true)) then
    return nil
  end
  -- the first bytes, not the end, which may never come
  local first = s:peek(256)
  if first:match("^\239\187\191") then first = first:sub(4) end -- a BOM
  if first:match("^%s*data:") or first:match("^%s*event:") or first:match("^%s*id:")
      or first:match("^:") then
    return nil
  end
  s:close()
  return errors.new("parse", "expected an event stream, the server sent "
    .. M.describe_reply(head, first), { status = head.status, content_type = ctype })
end

--- Streaming request -> an open _llm.http stream with a 2xx status and
-- the number of retries, or nil, err.
function M.open_stream(spec)
  return with_retries(spec, function(key_line, send, n)
    local s, err = send("stream", {
      method = spec.method, url = spec.url, headers = spec.headers, extra_header = key_line,
      body = spec.body,
      timeout = spec.timeout, connect_timeout = spec.connect_timeout,
      stall_timeout = spec.stall_timeout, framing = spec.framing or "sse",
      insecure = spec.insecure, ca_file = spec.ca_file,
    }, n)
    if not s then
      return nil, err, err.kind ~= "cancelled" and err.retryable ~= false
    end
    local status = s:status()
    if status >= 200 and status < 300 then
      local e = (spec.framing or "sse") == "sse" and M.not_a_stream(s)
      if e then return nil, e, false end
      return s
    end
    local head = s:head()
    head.body = s:read_all() or ""
    s:close()
    local e = M.http_error(head, spec.parse_error)
    return nil, e, retry.should_retry_status(status, head.headers), head.headers
  end)
end

return M
