-- A cassette: one recorded run (a script's or the proxy's) in one sqlite
-- file. llm.record writes it, llm.replay and `llmrun replay` read it, and
-- `llmrun cassette` inspects it. Data, not code: the file holds requests
-- and responses, never anything that runs.
--
-- ---- the file format (version 1) ----------------------------------------
--
-- sqlite 3, WAL journal while it is written; the writer checkpoints and
-- closes it at the end of the run, so the .cassette file alone is the
-- whole recording (copy it freely then; while a run is still recording,
-- copy with `sqlite3 run.cassette .backup copy.cassette`). Created 0600.
--
--   meta(key TEXT PRIMARY KEY, value TEXT)
--     format        "llmrun-cassette"
--     version       the format version (this file: 1); a reader refuses
--                   a newer one instead of guessing
--     created_at    when recording started, ISO 8601 UTC
--     created_by    "llmrun 0.1.0"
--     source        "script NAME" or "proxy" or what llm.record.start was told
--     run_id        the call log's run id of the recording run
--     env           JSON: how providers were reached: the base URL
--                   variables (OPENAI_BASE_URL, ANTHROPIC_BASE_URL,
--                   OLLAMA_HOST) as set, and for OPENAI_API_KEY and
--                   ANTHROPIC_API_KEY only whether they were set (true);
--                   a replay resolves models from this, so a script that
--                   ran against OpenAI replays as OpenAI on a machine
--                   with no key
--     scrubbed      JSON list of request header names left out
--     providers     JSON list of "provider endpoint" the run called
--
--   requests(id INTEGER PRIMARY KEY, key TEXT UNIQUE, canon TEXT)
--     one row per distinct request. canon: the request in the cache key's
--     canonical form (llm.cache_canon.request: provider, endpoint, kind,
--     model and every body parameter, keys sorted, one spelling per
--     value; no headers, no API key); key: hex SHA-256 of canon.
--
--   calls(id INTEGER PRIMARY KEY, request, sent_request, kind, ...)
--     one row per logical call (a chat, a stream, an embedding call), id
--     in the order the calls began; request -> requests.id, the request
--     as the caller made it; sent_request: what went out when that
--     differs (an embedding call whose cache knew some vectors asks for
--     the others only), else NULL; kind: chat | stream | embed. Then the call log's columns (copied, so the file
--     stands alone: the recording machine's runs.db is not needed to
--     read it): run_id, tag, case_id, model, provider, simulated,
--     started_at (epoch s), t_start (s after recording started),
--     latency_ms, ttft_ms, prompt_tokens, completion_tokens,
--     cached_tokens, cache_creation_tokens, input_tokens, cost (USD, the
--     prices of the recording day), cache (the cache that answered:
--     exact | semantic, no exchange then), status (ok | error | partial
--     | cancelled), retries, error_kind, error_status, request_id;
--     answer (the answer's text, for what-if quality); t_end (s after
--     recording started); begin_ev and finish_ev: the places of the
--     call's begin (before caches look at it) and finish in one count
--     over the run, the order an ordered replay keeps
--     (llm.replay_order).
--
--   exchanges(id INTEGER PRIMARY KEY, call, attempt, ...)
--     one row per HTTP attempt of a call (a retried call has several):
--     call -> calls.id; attempt 0, 1, ...; method, path (the URL's path;
--     the host is the canon's endpoint); request_headers (JSON object,
--     without Authorization, x-api-key, api-key, cookies or the names
--     scrubbed); status (0: no HTTP response, see error); headers (JSON
--     object of the response headers that matter: content-type, request
--     ids, rate limits, retry-after, x-should-retry,
--     openai-processing-ms); body (BLOB, the bytes as received); chunks
--     (JSON [[t_ms, bytes], ...]: the body's pieces as they arrived, in
--     ms after the attempt started; their sizes add up to the body);
--     t_start (s after recording started), headers_ms and end_ms (after
--     the attempt started); error (JSON {kind, message} when the attempt
--     failed: no response, or cut after its headers).
--
-- An answer that quotes a configured API key has it masked (as every
-- error llmrun makes). Readers: llm.replay (matching: requests.canon,
-- calls, exchanges without bodies), src/store/replay_server.c (status,
-- headers, body, chunks, headers_ms, end_ms, error of one exchange),
-- lualib/llm/cli/cassette.lua, lualib/llm/whatif.lua.
local sqlite = require "_llm.sqlite"
local errors = require "llm.errors"

local M = {}

M.FORMAT = "llmrun-cassette"
M.VERSION = 1

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
  id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, canon TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
  id INTEGER PRIMARY KEY, request INTEGER REFERENCES requests(id),
  sent_request INTEGER REFERENCES requests(id), kind TEXT NOT NULL,
  run_id TEXT, tag TEXT, case_id TEXT, model TEXT, provider TEXT, simulated INTEGER,
  started_at REAL, t_start REAL, latency_ms REAL, ttft_ms REAL,
  prompt_tokens INTEGER, completion_tokens INTEGER, cached_tokens INTEGER,
  cache_creation_tokens INTEGER, input_tokens INTEGER, cost REAL, cache TEXT,
  status TEXT, retries INTEGER, error_kind TEXT, error_status INTEGER, request_id TEXT,
  answer TEXT, t_end REAL, begin_ev INTEGER, finish_ev INTEGER);
CREATE TABLE IF NOT EXISTS exchanges (
  id INTEGER PRIMARY KEY, call INTEGER NOT NULL REFERENCES calls(id), attempt INTEGER NOT NULL,
  method TEXT NOT NULL, path TEXT NOT NULL, request_headers TEXT,
  status INTEGER NOT NULL, headers TEXT, body BLOB, chunks TEXT,
  t_start REAL, headers_ms REAL, end_ms REAL, error TEXT);
CREATE INDEX IF NOT EXISTS calls_request ON calls(request);
CREATE INDEX IF NOT EXISTS exchanges_call ON exchanges(call, attempt);
]]

local Cassette = {}
Cassette.__index = Cassette
Cassette.__name = "llm.cassette"

local function fail(path, message, fields)
  fields = fields or {}
  fields.path = path
  return nil, errors.new("cassette", message, fields)
end

-- sqlite's failure (an llm.error of kind "sqlite", its result code as the
-- status) for a damaged or foreign file, as a sentence.
local function explain(path, err)
  local msg, code = err.message, err.status
  if code == "notadb" or code == "corrupt" then
    return fail(path, ("%s is not a readable cassette (damaged, or not an llmrun cassette: %s)")
      :format(path, msg), { corrupt = true })
  end
  return fail(path, ("cannot read the cassette %s: %s"):format(path, msg), { code = code })
end

--- M.open(path [, mode]) -> cassette | nil, err (an llm.error of kind
-- "cassette": missing, corrupt, newer = true tell which).
-- mode "r" (default) or "rw" (an existing cassette, to add to or prune).
function M.open(path, mode)
  if type(path) ~= "string" or path == "" then
    error("llm.cassette.open: a file path is expected", 2)
  end
  local db, err = sqlite.open(path, mode or "r")
  if not db then
    if err.status == "missing" then return fail(path, "no cassette at " .. path, { missing = true }) end
    return explain(path, err)
  end
  local rows, qerr = db:query("SELECT key, value FROM meta")
  if not rows then
    db:close()
    if qerr.status == "error" and qerr.message:find("no such table", 1, true) then
      return fail(path, path .. " is an sqlite file but not an llmrun cassette (no meta table)",
        { corrupt = true })
    end
    return explain(path, qerr)
  end
  local meta = {}
  for _, r in ipairs(rows) do meta[r.key] = r.value end
  if meta.format ~= M.FORMAT then
    db:close()
    return fail(path, path .. " is not an llmrun cassette (its meta table says format "
      .. tostring(meta.format) .. ")", { corrupt = true })
  end
  local v = math.tointeger(tonumber(meta.version))
  if not v then
    db:close()
    return fail(path, path .. " has no readable format version", { corrupt = true })
  end
  if v > M.VERSION then
    db:close()
    return fail(path, ("%s is a version %d cassette, written by a newer llmrun (%s); this llmrun "
      .. "reads versions up to %d: upgrade llmrun to read it"):format(path, v,
      tostring(meta.created_by), M.VERSION), { newer = true, version = v })
  end
  return setmetatable({ db = db, path = path, meta = meta, version = v }, Cassette)
end

local function iso_utc(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

--- M.create(path, meta, mode) -> cassette | nil, err. mode: "new" (the
-- file must not exist), "overwrite", or "append" (an existing cassette
-- is added to; its meta is kept).
function M.create(path, meta, mode)
  mode = mode or "new"
  local f = io.open(path, "rb")
  if f then
    f:close()
    if mode == "append" then
      local c, err = M.open(path, "rw")
      if not c then return nil, err end
      return c
    elseif mode == "new" then
      return fail(path, ("%s exists: a recording is not overwritten unless asked "
        .. "(LLMRUN_RECORD_MODE=overwrite, or append to add to it)"):format(path), { exists = true })
    end
    os.remove(path)
    os.remove(path .. "-wal")
    os.remove(path .. "-shm")
  end
  local db, err = sqlite.open(path, "create")
  if not db then return explain(path, err) end
  local ok, serr = db:script(SCHEMA)
  if not ok then
    db:close()
    return explain(path, serr)
  end
  local m = { format = M.FORMAT, version = tostring(M.VERSION), created_at = iso_utc(os.time()) }
  for k, v in pairs(meta or {}) do m[k] = v end
  for k, v in pairs(m) do
    local done, eerr = db:exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", k, tostring(v))
    if not done then
      db:close()
      return explain(path, eerr)
    end
  end
  return setmetatable({ db = db, path = path, meta = m, version = M.VERSION }, Cassette)
end

function Cassette:set_meta(key, value)
  self.meta[key] = value
  return self:exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, tostring(value))
end

--- The whole file is readable: sqlite's quick_check. true | nil, err.
function Cassette:check()
  local rows, err = self.db:query("PRAGMA quick_check")
  if not rows then return explain(self.path, err) end
  local first = rows[1] and rows[1].quick_check
  if first ~= "ok" then
    return fail(self.path, ("%s is damaged: %s"):format(self.path, tostring(first)), { corrupt = true })
  end
  return true
end

--- rows | nil, err (an llm.error) for a read.
function Cassette:query(sql, ...)
  local rows, err = self.db:query(sql, ...)
  if not rows then return explain(self.path, err) end
  return rows
end

function Cassette:exec(sql, ...)
  local n, id_or_err = self.db:exec(sql, ...)
  if not n then return explain(self.path, id_or_err) end
  return n, id_or_err
end

function Cassette:close()
  if self.db then
    self.db:close()
    self.db = nil
  end
end
Cassette.__close = Cassette.close
Cassette.__gc = Cassette.close

--- The recorded environment (meta.env decoded), or {}.
function Cassette:env()
  local ok, t = pcall(require("cjson").decode, self.meta.env or "{}")
  return ok and type(t) == "table" and t or {}
end

--- "2026-12-07 19:00 UTC" from created_at.
function Cassette:recorded_date()
  local s = self.meta.created_at or ""
  local d, t = s:match("^(%d+%-%d+%-%d+)T(%d+:%d+)")
  return d and (d .. " " .. t .. " UTC") or s
end

--- The providers of the recording, as "openai at http://..." text.
function Cassette:providers_text()
  local ok, list = pcall(require("cjson").decode, self.meta.providers or "[]")
  if not ok or type(list) ~= "table" or #list == 0 then return "no provider" end
  local out = {}
  for i, p in ipairs(list) do
    local name, endpoint = tostring(p):match("^(%S+) (.*)$")
    if name and endpoint == "sim" then
      out[i] = name .. " (the built-in simulator)"
    elseif name then
      out[i] = name .. (endpoint ~= "" and (" at " .. endpoint) or "")
    else
      out[i] = tostring(p)
    end
  end
  return table.concat(out, ", ")
end

M.Cassette = Cassette
return M
