-- llm.record: every exchange of a run, into a cassette (llm.cassette says
-- what the file holds).
--
--   LLMRUN_RECORD=run.cassette llmrun exp.lua
--   llm.record.start(path [, opts]) -> path     llm.record.stop() -> summary
--   llm.record.active() -> path | nil           llm.record.stats() -> counts
--
-- opts: mode = "new" (default: an existing file is an error: recordings
-- cost money), "overwrite" or "append"; scrub_headers = {names} (request
-- headers left out besides the secrets, which are never stored;
-- LLMRUN_RECORD_SCRUB=a,b); keep_headers = {names} (response headers kept
-- besides the ones that matter); source = text for meta.source.
-- LLMRUN_RECORD_MODE sets mode for LLMRUN_RECORD.
--
-- How: stages of the call pipeline (rows of llm.pipeline's table,
-- installed by start, taken out by stop). The send stage's tap asks for
-- `record = true` in the network table of the call's attempts, so
-- _llm.http keeps their raw body pieces with their arrival times, and
-- notes each attempt on the call. The finish stage (after prices and the
-- call log) writes the call (its canonical request, the call log's
-- columns, the answer) and its attempts. Cache hits and refused calls are written too (no
-- exchange): they are part of the run's traffic, for what-ifs.
-- Writes go to sqlite in one transaction, committed every 250 ms or 256
-- calls and at stop (and at exit); stop checkpoints the WAL into the
-- file, so the cassette is then one file, safe to copy.
local loop = require "_llm.loop"
local sqlite = require "_llm.sqlite"
local cachelib = require "_llm.cache"
local pipeline = require "llm.pipeline"
local canon = require "llm.cache_canon"
local cassette = require "llm.cassette"
local outcome = require "llm.outcome"
local untrusted = require "llm.untrusted"
local host = require "_llm.host"

local M = {}

-- Request headers never stored, whatever the configuration says.
local SECRET = { authorization = true, ["x-api-key"] = true, ["api-key"] = true,
                 ["proxy-authorization"] = true, cookie = true,
                 -- a fresh random value per request: nothing to replay
                 ["idempotency-key"] = true }
-- Left out by default; LLMRUN_RECORD_SCRUB / scrub_headers add names.
M.DEFAULT_SCRUB = { "openai-organization", "openai-project" }

-- Response headers that matter to a replay and to reports.
local function kept_header(name, keep)
  return name == "content-type" or name == "x-request-id" or name == "request-id"
    or name == "openai-processing-ms" or name == "retry-after" or name == "retry-after-ms"
    or name == "x-should-retry" or name:sub(1, 12) == "x-ratelimit-"
    or name:sub(1, 20) == "anthropic-ratelimit-" or keep[name] == true
end

-- The base URL variables are kept as set; for keys only whether they were.
local ENV_VALUES = { "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "OLLAMA_HOST" }
local ENV_PRESENT = { "OPENAI_API_KEY", "ANTHROPIC_API_KEY" }

local function recorded_env()
  local env = {}
  for _, k in ipairs(ENV_VALUES) do
    local v = os.getenv(k)
    if v and v ~= "" then env[k] = (v:gsub("//[^/@]*@", "//")) end -- no user:password@
  end
  for _, k in ipairs(ENV_PRESENT) do
    local v = os.getenv(k)
    if v and v ~= "" then env[k] = true end
  end
  return env
end

local rec -- the active recording, or nil

local function set_of(list)
  local s = {}
  for _, v in ipairs(list or {}) do s[tostring(v):lower()] = true end
  return s
end

local function env_list(name)
  local v = os.getenv(name)
  local out = {}
  if v then for item in v:gmatch("[^,%s]+") do out[#out + 1] = item end end
  return out
end

-- ---- writing ---------------------------------------------------------------------------

local function warn(msg)
  if rec and not rec.warned then
    rec.warned = true
    io.stderr:write("llmrun: warning: the recording ", rec.path, " is incomplete: ", msg, "\n")
  end
end

local function exec(sql, ...)
  local n, why = rec.cas:exec(sql, ...)
  if not n then warn(tostring(why)) end
  return n, why
end

local function commit()
  if rec.open_tx then
    exec("COMMIT")
    rec.open_tx = false
  end
  rec.dirty, rec.last_commit = 0, loop.now()
end

local function begin()
  if not rec.open_tx then
    exec("BEGIN")
    rec.open_tx = true
  end
end

local function maybe_commit()
  rec.dirty = rec.dirty + 1
  if rec.dirty >= 256 or loop.now() - rec.last_commit > 0.25 then commit() end
end

-- A canonical text -> its requests.id (inserted once per text).
local function request_id(text)
  local id = rec.request_ids[text]
  if id then return id end
  local key = cachelib.hex(cachelib.sha256(text))
  exec("INSERT OR IGNORE INTO requests (key, canon) VALUES (?, ?)", key, text)
  local rows = rec.cas:query("SELECT id FROM requests WHERE key = ?", key)
  id = rows and rows[1] and rows[1].id
  rec.request_ids[text] = id
  return id
end

--- The canonical request of a call (the cache key's form), or nil, why:
-- as the caller made it, or with sent = true as it went out (an
-- embedding call whose cache knew some vectors asks for the others only).
function M.canonical(call, sent)
  local m = call.model
  if type(m) ~= "table" or not m.provider then return nil, "no model" end
  local body = call.body
  if sent and call.send_body then body = call.send_body end
  local text, why = canon.request(m, call.kind == "embed" and "embed" or "chat", body)
  if not text then return nil, why end
  -- a base URL may carry credentials (https://user:password@host): never stored
  if text:find("@", 1, true) and text:find('"endpoint":"[^"]*@') then
    text = text:gsub('("endpoint":"%a[%w+.-]*://)[^/"]*@', "%1")
  end
  return text
end

local function header_json(headers, keep, mask)
  local t = {}
  for k, v in pairs(headers or {}) do
    local name = tostring(k):lower()
    if kept_header(name, keep) then t[name] = mask and untrusted.mask(tostring(v)) or tostring(v) end
  end
  return next(t) and canon.encode(t) or nil
end

local function request_headers_json(lines)
  local t = {}
  for _, line in ipairs(lines or {}) do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    if name then
      name = name:lower()
      if not SECRET[name] and not rec.scrub[name] then t[name] = value end
    end
  end
  return next(t) and canon.encode(t) or nil
end

local function path_of(url)
  return (tostring(url):match("^%a[%w+.-]*://[^/]*(/.*)$") or "/")
end

local function error_json(err)
  if err == nil then return nil end
  local t = type(err) == "table" and err or { kind = "error", message = tostring(err) }
  return canon.encode { kind = tostring(t.kind or "error"), message = untrusted.mask(tostring(t.message or "")),
                        stalled = t.stalled or nil, truncated = t.truncated or nil }
end

local function ms(a, b)
  if type(a) ~= "number" or type(b) ~= "number" or a <= 0 or b <= 0 then return nil end
  return (a - b) * 1000
end

-- One attempt -> its exchanges row. last: the call's last attempt;
-- call_err: how the call ended (a stream cut after its headers is
-- marked with it).
local function write_exchange(call_id, att, last, call_err)
  local net = att.net
  local status, headers, body, chunks, t_start, headers_ms, end_ms, err = 0, nil, nil, nil, att.t0
  local res = att.result
  if att.kind == "request" and res then
    status, headers, body, chunks = res.status, res.headers, res.body, res.chunks
    t_start = res.t_start or att.t0
    headers_ms, end_ms = ms(res.t_headers, t_start), ms(res.t_end, t_start)
  elseif att.kind == "stream" and res then
    local head = res:head()
    local ok, r = pcall(res.recording, res)
    status, headers = head.status, head.headers
    if ok then body, chunks = r.body, r.chunks end
    t_start = head.t_start or att.t0
    headers_ms, end_ms = ms(head.t_headers, t_start), ms(head.t_end, t_start)
    -- a 2xx stream that ended in an error after its headers was cut
    -- (a truncated stream, a stall, a drop, the caller closing it early)
    if last and call_err ~= nil and status >= 200 and status < 300 then err = call_err end
  else
    err = att.err
    end_ms = (att.t1 - att.t0) * 1000
  end
  if end_ms == nil then end_ms = (att.t1 - att.t0) * 1000 end
  local masked = status == 0 or status >= 400
  if masked and body then
    -- an error body may quote the key: masked, so its pieces no longer
    -- add up; it is replayed as one piece at the end
    local clean = untrusted.mask(body)
    if clean ~= body then body, chunks = clean, nil end
  end
  exec([[INSERT INTO exchanges (call, attempt, method, path, request_headers, status, headers,
         body, chunks, t_start, headers_ms, end_ms, error)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]],
    call_id, att.n, net.method or "GET", path_of(att.url), request_headers_json(net.headers), status,
    header_json(headers, rec.keep, masked), body and sqlite.blob(body) or nil, chunks,
    t_start - rec.t0, headers_ms, end_ms, error_json(err))
  rec.exchanges = rec.exchanges + 1
end

local function note_provider(call)
  local m = call.model
  if type(m) ~= "table" or not m.provider then return end
  local p = m.provider .. " " .. canon.endpoint(m):gsub("^(%a[%w+.-]*://)[^/]*@", "%1")
  if not rec.providers_seen[p] then
    rec.providers_seen[p] = true
    rec.providers[#rec.providers + 1] = p
  end
end

-- record.write, a finish-stage: the call and its attempts into the cassette.
local function on_finish(call, resp, err, partial)
  if not rec or (rec.only and not call.replay_live) then return end
  rec.ev = rec.ev + 1
  local finish_ev = rec.ev
  local ok, why = pcall(function()
    begin()
    local text = M.canonical(call)
    local req_id = text and request_id(text) or nil
    local sent = call.send_body and M.canonical(call, true)
    local sent_id = sent and sent ~= text and request_id(sent) or nil
    local status, _, latency, ttft, cost, usage, retries, cache = outcome(call, resp, err, partial)
    local m = call.model or {}
    usage = usage or {}
    local ekind, estatus, rid
    if type(err) == "table" then
      ekind, estatus, rid = err.kind, err.status, err.request_id
    elseif err ~= nil then
      ekind = "error"
    elseif resp then
      rid = resp.request_id
    end
    local answer = resp and resp.text or partial and partial.text or nil
    if type(answer) ~= "string" then answer = nil end
    local id = call.record_seq
    if not id then
      rec.seq = rec.seq + 1
      id = rec.seq
    end
    local case = call.case
    if case ~= nil then case = tostring(case) end
    exec([[INSERT OR REPLACE INTO calls (id, request, sent_request, kind, run_id, tag, case_id, model, provider,
           simulated, started_at, t_start, latency_ms, ttft_ms, prompt_tokens, completion_tokens,
           cached_tokens, cache_creation_tokens, input_tokens, cost, cache, status, retries,
           error_kind, error_status, request_id, answer, t_end, begin_ev, finish_ev)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]],
      id, req_id, sent_id, call.kind, rec.run_id, call.tag ~= nil and tostring(call.tag) or nil, case,
      m.name, m.provider, m.simulated and 1 or 0, call.started_at, (call.t0 or rec.t0) - rec.t0,
      latency, ttft, math.tointeger(usage.prompt_tokens), math.tointeger(usage.completion_tokens),
      math.tointeger(usage.cached_tokens), math.tointeger(usage.cache_creation_tokens),
      math.tointeger(usage.input_tokens), cost, cache, status, math.tointeger(retries) or 0,
      ekind, math.tointeger(estatus), rid, answer, (call.t_end or loop.now()) - rec.t0,
      call.record_begin_ev, finish_ev)
    local atts = call.record_attempts
    if atts then
      for i, att in ipairs(atts) do write_exchange(id, att, i == #atts, err) end
    end
    note_provider(call)
    rec.calls = rec.calls + 1
    maybe_commit()
  end)
  if not ok then warn(tostring(why)) end
end

-- record.begin, a before-stage: stamps each call with its place in the run
-- (calls are written when they finish, in another order).
local function on_before(call)
  if rec and not call.record_seq then
    rec.seq = rec.seq + 1
    call.record_seq = rec.seq
    rec.ev = rec.ev + 1
    call.record_begin_ev = rec.ev
  end
end

-- record.tap, a send tap (nearest the caller): every attempt of a model
-- call is noted on the call; its network table asks _llm.http to keep the
-- body's pieces and their times (record = true).
local function tap(net, _, send, call)
  if not rec or not call or (rec.only and not call.replay_live) then return nil end
  local list = {}
  call.record_attempts = list
  local rnet = {}
  for k, v in pairs(net) do rnet[k] = v end
  rnet.record = true
  return function(kind, anet, url, body, key_line, n)
    local t0 = loop.now()
    local a, b = send(kind, anet, url, body, key_line, n)
    list[#list + 1] = { kind = kind, net = anet, url = url, n = n, result = a, err = b, t0 = t0,
                        t1 = loop.now() }
    return a, b
  end, rnet
end

M.before_stage, M.send_tap, M.finish_stage = on_before, tap, on_finish

-- ---- starting and stopping -------------------------------------------------------------------

local function script_name()
  local a = rawget(_G, "arg")
  local s = type(a) == "table" and a[0] or nil
  return s ~= nil and tostring(s) or "(interactive)"
end

local exit_hooked = false

--- Starts recording into path. Misuse (a recording already running, the
-- replayed cassette as the target, bad options) raises; a file that
-- cannot be made returns nil, err.
function M.start(path, opts)
  if type(path) ~= "string" or path == "" then
    error("bad argument #1 to 'llm.record.start' (file path expected)", 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("bad argument #2 to 'llm.record.start' (table expected)", 2) end
  for k in pairs(opts) do
    if k ~= "mode" and k ~= "scrub_headers" and k ~= "keep_headers" and k ~= "source" and k ~= "only" then
      error("llm.record.start: unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  local mode = opts.mode or "new"
  if mode ~= "new" and mode ~= "overwrite" and mode ~= "append" then
    error("llm.record.start: mode must be \"new\", \"overwrite\" or \"append\", got " .. tostring(mode), 2)
  end
  if rec then error("llm.record.start: already recording into " .. rec.path, 2) end
  local replaying = package.loaded["llm.replay"] and package.loaded["llm.replay"].active()
  if replaying and replaying.path == path and not opts.only then
    error(("llm.record: %s is the cassette being replayed; record into another file "
      .. "(LLMRUN_RECORD and LLMRUN_REPLAY name the same cassette)"):format(path), 2)
  end
  local log = require "llm.log"
  local scrub = set_of(M.DEFAULT_SCRUB)
  for k in pairs(set_of(opts.scrub_headers)) do scrub[k] = true end
  for k in pairs(set_of(env_list("LLMRUN_RECORD_SCRUB"))) do scrub[k] = true end
  local scrubbed = {}
  for k in pairs(scrub) do scrubbed[#scrubbed + 1] = k end
  table.sort(scrubbed)
  local cas, err = cassette.create(path, {
    created_by = "llmrun " .. host.version,
    source = opts.source or ("script " .. script_name()),
    run_id = log.run_id(),
    env = canon.encode(recorded_env()),
    scrubbed = canon.encode(setmetatable(scrubbed, nil)),
  }, mode)
  if not cas then return nil, err end
  local maxrow = cas:query("SELECT max(id) AS n, max(max(coalesce(begin_ev, 0)), "
    .. "max(coalesce(finish_ev, 0))) AS ev FROM calls")
  rec = {
    cas = cas, path = path, t0 = loop.now(), seq = maxrow and maxrow[1] and maxrow[1].n or 0,
    dirty = 0, last_commit = loop.now(), open_tx = false, request_ids = {},
    ev = maxrow and maxrow[1] and maxrow[1].ev or 0, source_given = opts.source ~= nil,
    scrub = scrub, keep = set_of(opts.keep_headers), run_id = log.run_id(),
    calls = 0, exchanges = 0, providers = {}, providers_seen = {},
  }
  -- an appended recording keeps the providers it had
  local ok, old = pcall(require("cjson").decode, cas.meta.providers or "[]")
  if ok and type(old) == "table" then
    for _, p in ipairs(old) do
      if not rec.providers_seen[p] then
        rec.providers_seen[p] = true
        rec.providers[#rec.providers + 1] = p
      end
    end
  end
  -- only = true (llm.replay's "live" policy): only the calls the replay
  -- sent to the provider (call.replay_live) are added
  rec.only = opts.only and true or nil
  pipeline.use("record") -- record.begin, record.tap, record.write
  if not exit_hooked then
    exit_hooked = true
    host.on_exit(function() if rec then M.stop() end end)
  end
  return path
end

--- Ends the recording: commits, writes the provider list, folds the WAL
-- into the file. -> {path=, calls=, exchanges=} (nil when none ran).
function M.stop()
  if not rec then return nil end
  pipeline.drop("record")
  local r = rec
  commit()
  r.cas:set_meta("providers", canon.encode(setmetatable(r.providers, nil)))
  -- LLMRUN_RECORD starts before the script is known: name it now
  if not r.source_given then r.cas:set_meta("source", "script " .. script_name()) end
  r.cas.db:exec("PRAGMA wal_checkpoint(TRUNCATE)")
  r.cas:close()
  rec = nil
  return { path = r.path, calls = r.calls, exchanges = r.exchanges }
end

function M.active()
  return rec and rec.path or nil
end

function M.stats()
  if not rec then return nil end
  return { path = rec.path, calls = rec.calls, exchanges = rec.exchanges }
end

--- Commits what is written so far (a reader in another process sees it).
function M.flush()
  if rec then commit() end
end

return M
