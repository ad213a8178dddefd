-- llm.transport: a model's network options as one table, and one HTTP
-- attempt with them. The retry loop (llm.model's Model:send, the send
-- stage of llm.pipeline) calls attempt() and lets the provider read what
-- a non-2xx reply says.
--
-- The network table, m.net, made and checked once per model by M.net:
--   {base_url, method = "POST", headers = {"Name: value", ...}, timeout,
--    connect_timeout, stall_timeout, max_idle_reuse, insecure, ca_file,
--    framing = "sse", max_retries, retry_scale, quota_key}
-- goes to _llm.http as it is: http.request(net, url, body, key_line) and
-- http.stream(...); only a call's own overrides (opts.timeout...) make a
-- copy (M.for_call). The per-attempt header is the Idempotency-Key line,
-- the same on every attempt of one logical request. To add an option:
-- a row in OPTIONS below, its reader in src/lmod_http.c (read_request),
-- its field in src/http.h (llm_http_request) and its curl option in
-- src/http.c (llm_http_start); nothing in between copies fields.
local http = require "_llm.http"
local errors = require "llm.errors"
local loop = require "_llm.loop"
local untrusted = require "llm.untrusted"
local pipeline = require "llm.pipeline"

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

-- ---- the network table ---------------------------------------------------------

M.DEFAULT_TIMEOUT = 600     -- seconds, the SDKs' default
M.DEFAULT_STALL = 60        -- seconds without an event ends a stream

-- The model options that are network options: name -> check(v) -> why not.
local function seconds(v)
  if type(v) ~= "number" or v ~= v or v < 0 then return "must be a number of seconds >= 0" end
  if v ~= math.huge and v > 1e9 then return "must be at most 1e9 seconds, or math.huge" end
end
local OPTIONS = {
  timeout = seconds,           -- response headers (buffered: the whole body) in time
  connect_timeout = seconds,   -- TCP/TLS connect; default 5
  stall_timeout = seconds,     -- a stream with nothing for this long fails
  max_idle_reuse = seconds,    -- an idle kept-alive connection older than this is
                               -- not reused (curl's CURLOPT_MAXAGE_CONN, 118 s):
                               -- set it below a server's idle close
  max_retries = function(v)
    if math.type(v) ~= "integer" or v < 0 then return "must be an integer >= 0" end
  end,
  retry_scale = seconds,       -- multiplies every retry delay (tests: 0.01)
  insecure = function(v) if type(v) ~= "boolean" then return "must be a boolean" end end,
  ca_file = function(v) if type(v) ~= "string" then return "must be a string" end end,
}
M.OPTIONS = OPTIONS

local function fnv1a(s)
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  return h
end

--- net(cfg, opts, format [, level]) -> the network table of a model.
-- cfg: the provider's configuration (base_url, api_key...); opts: the
-- model's options (the OPTIONS above, headers = {Name = value});
-- format: the wire format, whose headers(cfg, extra) makes the header
-- lines. Misuse (a bad value, a header with a line break) raises.
function M.net(cfg, opts, format, level)
  level = (level or 1) + 1
  for k, check in pairs(OPTIONS) do
    local v = opts[k]
    local why = v ~= nil and check(v)
    if why then error(("llm.model: option '%s' %s"):format(k, why), level) end
  end
  local ok, lines = pcall(format.headers, cfg, opts.headers)
  if not ok then error("llm.model: " .. tostring(lines):gsub("^[^:]*:%d+: ", ""), level) end
  return {
    base_url = cfg.base_url,
    method = "POST",
    headers = lines,
    timeout = opts.timeout or M.DEFAULT_TIMEOUT,
    connect_timeout = opts.connect_timeout,
    stall_timeout = opts.stall_timeout or M.DEFAULT_STALL,
    max_idle_reuse = opts.max_idle_reuse,
    insecure = opts.insecure,
    ca_file = opts.ca_file,
    framing = "sse",
    max_retries = opts.max_retries,
    retry_scale = opts.retry_scale,
    -- the account whose quota may run out: host and a hash of the key,
    -- never the key itself
    quota_key = ("%s#%08x"):format(cfg.base_url:match("^(https?://[^/]+)") or cfg.base_url,
      fnv1a(cfg.api_key or "")),
    options = opts, -- what it was made from, for m:with
  }
end

-- The call options (m:chat(req, opts)) that override the model's.
local CALL_OVERRIDES = { "timeout", "connect_timeout", "stall_timeout", "max_retries" }

--- The network table of one call: the model's own, or a copy with the
-- call's overrides when opts has any. opts.net = {field = value} replaces
-- fields of the table for one request, for code that sends other requests
-- with a model's settings: the gateway (headers = the client's lines), the
-- Batch API (method = "GET", headers with another content type, max_body).
function M.for_call(net, opts)
  local copy
  local over = opts.net
  if over then
    copy = {}
    for nk, nv in pairs(net) do copy[nk] = nv end
    for nk, nv in pairs(over) do copy[nk] = nv end
  end
  for i = 1, #CALL_OVERRIDES do
    local k = CALL_OVERRIDES[i]
    local v = opts[k]
    if v ~= nil then
      if not copy then
        copy = {}
        for nk, nv in pairs(net) do copy[nk] = nv end
      end
      copy[k] = v
    end
  end
  return copy or net
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

--- Logs an attempt that failed (err: as the caller made it), when debugging.
function M.log_failure(net, url, t0, err)
  if debug_on then
    log("<- %s %s failed in %.0f ms: %s", net.method or "GET", url, (loop.now() - t0) * 1000,
      tostring(err))
  end
end

-- ---- quota: accounts whose quota ran out fail at once -------------------------------

-- An account is a host plus a hash of the API key (net.quota_key), so two
-- keys on one host are two accounts.
local exhausted = {}

--- The error for a request on an account whose quota ran out, or nil.
-- Only a run where some account ran out pays for the lookup.
function M.exhausted(net)
  if next(exhausted) == nil then return nil end
  local gone = exhausted[net.quota_key]
  if not gone then return nil end
  return errors.new("http", gone.message, {
    status = 429, code = gone.code, quota_exhausted = true, retries = 0 })
end

--- Remembers that err (quota_exhausted) ended net's account.
function M.mark_exhausted(net, err)
  exhausted[net.quota_key] = { message = err.message, code = err.code }
end

--- Forget quota exhaustion (after a top-up, or between tests).
function M.reset_quota_flags()
  exhausted = {}
end

-- ---- one attempt ---------------------------------------------------------------------

-- Idempotency keys: 96 bits drawn once per process, then a count, so each
-- logical request has its own key at the cost of one concatenation (the
-- SDKs' keys are random UUIDs: unique, not secret; so are these). The
-- clock and a fresh address are mixed in: two processes whose scripts
-- seeded math.random alike still get different keys.
local key_prefix = ("Idempotency-Key: llmrun-%08x%08x%08x-"):format(math.random(0, 0xffffffff),
  math.random(0, 0xffffffff), fnv1a(("%.9f %s"):format(loop.wallclock(), tostring({}))))
local key_count = 0

--- "Idempotency-Key: llmrun-<96 random bits>-<count>": one per logical request.
function M.idempotency_line()
  key_count = key_count + 1
  return key_prefix .. key_count
end

local http_request, http_stream = http.request, http.stream

-- The bare send: straight to _llm.http.
local function http_send(kind, net, url, body, key_line)
  if kind == "stream" then return http_stream(net, url, body, key_line) end
  return http_request(net, url, body, key_line)
end

local taps = pipeline.send_taps

--- The send function for one logical request and the network table its
-- attempts use: the bare HTTP one and net, or what the send taps
-- (llm.pipeline: record, replay) make of them; nil, err when a tap fails
-- the request unsent. call: the llm.calls record the request serves (nil
-- for a request outside a call). A tap, tap(net, url, send, call),
-- returns a send function for this request (and, optionally, a copy of
-- net with fields changed, which the taps nearer the caller and the retry
-- loop then use), nil to stay out, or nil, err.
function M.sender(net, url, call)
  if taps[1] == nil then return http_send, net end
  local send = http_send
  for i = #taps, 1, -1 do
    local s, x = taps[i].fn(net, url, send, call)
    if s then
      send = s
      if x then net = x end
    elseif x then
      return nil, x
    end
  end
  return send, net
end

--- One attempt: send(kind, net, url, body, key_line, n).
-- -> res (kind "request": {status, headers, body, t_*} with a 2xx status;
--         "stream": an open _llm.http stream with a 2xx status)
-- | nil, err, retryable (a transport failure, or a 2xx stream that is not one)
-- | nil, nil, reply (a non-2xx answer: {status, headers, body} for the
--   provider to read; a stream's body is read and the stream closed)
function M.attempt(send, kind, net, url, body, key_line, n)
  local t0 = debug_on and loop.now()
  if debug_on then
    log("-> %s %s (attempt %d) [%s; %s]", net.method or "GET", url, n + 1,
        table.concat(M.redact(net.headers or {}), "; "), key_line)
  end
  local res, err = send(kind, net, url, body, key_line, n)
  if not res then
    if debug_on then M.log_failure(net, url, t0, err) end
    return nil, err, err.kind ~= "cancelled" and err.retryable ~= false
  end
  if kind == "stream" then
    local status = res:status()
    if status < 200 or status >= 300 then
      local head = res:head()
      head.body = res:read_all() or ""
      res:close()
      return nil, nil, head
    end
    local e = (net.framing or "sse") == "sse" and M.not_a_stream(res)
    if e then
      if debug_on then M.log_failure(net, url, t0, e) end
      return nil, e, false
    end
  elseif res.status < 200 or res.status >= 300 then
    return nil, nil, res
  end
  if debug_on then log("<- %s %s ok in %.0f ms", net.method or "GET", url, (loop.now() - t0) * 1000) end
  return res
end

-- ---- what came back -----------------------------------------------------------------------

--- "200 text/html: <!DOCTYPE html>...": what a stream request got, for
-- messages (head: a stream's head, with first_bytes; body: more of it).
function M.describe_reply(head, body)
  local ctype = head.headers and head.headers["content-type"] or "no content type"
  local s = untrusted.snippet(body or head.first_bytes or "", 300)
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

return M
