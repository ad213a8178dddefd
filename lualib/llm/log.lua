-- llm.log: every model call (success, failure, cache hit) becomes a row of
-- the call log, $XDG_DATA_HOME/llmrun/runs.db (see src/store/calllog.h for the
-- file and its guarantees). This module is the policy: when to log, the
-- run this process is, and what to do when the log cannot be written
-- (warn once, keep calling: logging never fails a call).
--
--   llm.log.off() / llm.log.on() / llm.log.enabled()
--   llm.log.texts(false)  no prompt or answer text from now on (true: again)
--   llm.log.run_id()   this process's run id
--   llm.log.path()     the database file
--   llm.log.use(path)  log to another file from now on (tests, experiments)
--   llm.log.flush()    commit what is buffered -> true | nil, err
--   llm.log.reader()   a reader for queries (see _llm.calllog) | nil, err
--                      (err.status == "missing": nothing logged yet)
--
-- LLMRUN_LOG=0 (or off/false/no) turns logging off for the process; so
-- does a dry run (`llmrun --dry-run`, LLMRUN_DRY_RUN): its simulated calls
-- are an estimate, not a run to report on.
--
-- Each call's text is logged too, so `llmrun logs -q` finds it: the
-- prompt (one "role: content" line per message; an embedding call's
-- inputs), the answer (its text and tool calls) and the error message,
-- each cut at TEXT_MAX bytes, with every configured API key masked
-- (llm.untrusted). LLMRUN_LOG_TEXT=0 turns the texts off for the process,
-- a model's log_text = false for its calls, a call's {log_text = false}
-- for that call. The run records the script, its arguments and the
-- working directory.
local calllog = require "_llm.calllog"
local host = require "_llm.host"
local loop = require "_llm.loop"
local errors = require "llm.errors"
local pipeline = require "llm.pipeline"
local outcome = require "llm.outcome"
local untrusted = require "llm.untrusted"

local M = {}

local function env_off()
  local v = os.getenv("LLMRUN_LOG")
  if v ~= nil and (v == "0" or v:lower() == "off" or v:lower() == "false" or v:lower() == "no") then
    return true
  end
  local dry = os.getenv("LLMRUN_DRY_RUN")
  return dry ~= nil and dry ~= "" and dry ~= "0"
end

local function env_text_off()
  local v = os.getenv("LLMRUN_LOG_TEXT")
  return v ~= nil and (v == "0" or v:lower() == "off" or v:lower() == "false" or v:lower() == "no")
end

M.TEXT_MAX = 65536 -- bytes of each text kept per call

local state = {
  enabled = not env_off(),
  texts = not env_text_off(),
  log = nil,        -- the open log, once a call was made
  broken = false,   -- it could not be opened: do not retry every call
  warned = false,
  run_id = nil,
  path = nil,       -- set by M.use; else the XDG default
}

local function warn(msg)
  if state.warned then return end
  state.warned = true
  io.stderr:write("llmrun: warning: ", msg, " (calls go on; set LLMRUN_LOG=0 to stop logging)\n")
end

--- The database file (nil, err when no data directory can be named).
function M.path()
  if state.path then return state.path end
  local dir, err = host.xdg_dir("data", false)
  if not dir then return nil, err end
  return dir .. "/runs.db"
end

function M.run_id()
  state.run_id = state.run_id or calllog.new_run_id()
  return state.run_id
end

local function script_name()
  local a = rawget(_G, "arg")
  local s = type(a) == "table" and a[0] or nil
  return s ~= nil and tostring(s) or "(interactive)"
end

-- The script's arguments as a JSON array (nil when it has none).
local function script_args()
  local a = rawget(_G, "arg")
  if type(a) ~= "table" or #a == 0 then return nil end
  local list = {}
  for i = 1, #a do list[i] = tostring(a[i]) end
  local ok, text = pcall(require("cjson").encode, list)
  return ok and text or nil
end

local function close()
  local log = state.log
  if not log then return end
  state.log = nil
  local ok, err = log:flush()
  if not ok then warn(err.message) end
  local dropped = log:dropped()
  log:close()
  if dropped > 0 then
    io.stderr:write(("llmrun: warning: %d call log row%s could not be written\n"):format(
      dropped, dropped == 1 and "" or "s"))
  end
end

local function open(call)
  local path, err = M.path()
  local log
  if path then
    log, err = calllog.open(path)
  end
  if not log then
    state.broken = true
    warn("the call log is off: " .. err.message)
    return nil
  end
  log:set_run {
    run_id = M.run_id(), script = script_name(), version = host.version,
    started_at = call.started_at or loop.wallclock(), simulated = call.model and call.model.simulated or false,
    args = script_args(), cwd = host.cwd and host.cwd() or nil,
  }
  state.log = log
  if not state.exit_hooked then
    state.exit_hooked = true
    host.on_exit(close)
  end
  return log
end

-- ---- texts ------------------------------------------------------------------------

local function cut(s)
  if type(s) ~= "string" then return nil end
  if #s > M.TEXT_MAX then
    local keep = s:sub(1, M.TEXT_MAX)
    -- not inside a UTF-8 character
    keep = keep:gsub("[\192-\255][\128-\191]*$", "")
    s = keep .. ("\n[... %d bytes not logged]"):format(#s - #keep)
  end
  return untrusted.mask(s)
end

local function content_text(c)
  if type(c) == "string" then return c end
  if type(c) == "number" then return tostring(c) end
  if type(c) ~= "table" then return "" end -- nil, cjson.null (a message with tool calls only)
  local parts = {}
  for _, p in ipairs(c) do
    if type(p) == "table" then
      if type(p.text) == "string" then parts[#parts + 1] = p.text
      elseif p.type then parts[#parts + 1] = "[" .. tostring(p.type) .. "]" end
    elseif type(p) == "string" then
      parts[#parts + 1] = p
    end
  end
  return table.concat(parts, "\n")
end

local function calls_text(list)
  local out = {}
  for _, tc in ipairs(list) do
    local f = type(tc) == "table" and tc["function"] or nil
    if type(f) == "table" then
      out[#out + 1] = ("[tool call %s(%s)]"):format(tostring(f.name), tostring(f.arguments or ""))
    end
  end
  return table.concat(out, "\n")
end

--- The prompt of a call as text: "role: content" per message (an
-- embedding call: its inputs, one a line).
function M.prompt_text(call)
  local body = call.body
  if type(body) ~= "table" then return nil end
  local msgs = body.messages
  if type(msgs) == "table" then
    -- the usual one or two plain messages: no list to build
    local m1, m2 = msgs[1], msgs[2]
    if #msgs <= 2 and type(m1) == "table" and type(m1.content) == "string" and m1.tool_calls == nil then
      if m2 == nil then return tostring(m1.role) .. ": " .. m1.content end
      if type(m2) == "table" and type(m2.content) == "string" and m2.tool_calls == nil then
        return tostring(m1.role) .. ": " .. m1.content .. "\n" .. tostring(m2.role) .. ": " .. m2.content
      end
    end
    local lines = {}
    for _, m in ipairs(msgs) do
      if type(m) == "table" then
        local text = content_text(m.content)
        if type(m.tool_calls) == "table" and #m.tool_calls > 0 then
          text = (text ~= "" and (text .. "\n") or "") .. calls_text(m.tool_calls)
        end
        lines[#lines + 1] = tostring(m.role) .. ": " .. text
      end
    end
    return table.concat(lines, "\n")
  end
  if type(body.input) == "table" then return table.concat(body.input, "\n") end
  return nil
end

--- The answer of a call as text: its text and tool calls.
function M.response_text(resp)
  if type(resp) ~= "table" then return nil end
  local text = type(resp.text) == "string" and resp.text or nil
  local tcs = rawget(resp, "tool_calls")
  if type(tcs) == "table" and #tcs > 0 then
    text = (text and text ~= "" and (text .. "\n") or "") .. calls_text(tcs)
  end
  return text
end

local NO_MODEL = {}

local function texts_wanted(call)
  if not state.texts then return false end
  if call.opts and call.opts.log_text == false then return false end
  if call.model and call.model.log_text == false then return false end
  return true
end

--- The row a finished call makes, as a table with the fields log:append
-- takes and reader:calls gives back, with its texts (prompt, response,
-- error) as reader:search { texts = true } gives them back. Plain data: an
-- experiment worker sends it to its coordinator, which logs it with
-- M.append_row.
function M.row_of(call, resp, err, partial)
  local status, _, latency, ttft, cost, usage, retries, cache = outcome(call, resp, err, partial)
  local m = call.model or NO_MODEL
  local error_kind, http_status, request_id
  if err ~= nil then
    if type(err) == "table" then
      error_kind, http_status, request_id = err.kind, math.tointeger(err.status), err.request_id
    else
      error_kind = "error"
    end
  elseif resp then
    request_id = resp.request_id
  end
  local case, ctx = call.case, call.context
  local prompt, response, error_text
  if texts_wanted(call) then
    prompt = cut(M.prompt_text(call))
    response = cut(M.response_text(resp or partial))
    if err ~= nil then
      error_text = cut(type(err) == "table" and err.message ~= nil and tostring(err.message) or tostring(err))
    end
  end
  -- one constructor with every field (nil where absent): the table is
  -- sized once instead of growing field by field
  return { tag = call.tag, model = m.name, provider = m.provider, kind = call.kind,
    simulated = m.simulated, started_at = call.started_at, latency_ms = latency, ttft_ms = ttft,
    cost = cost, cache_kind = cache, status = status, retries = math.tointeger(retries) or 0,
    prompt_tokens = usage and usage.prompt_tokens, completion_tokens = usage and usage.completion_tokens,
    cached_tokens = usage and usage.cached_tokens,
    cache_creation_tokens = usage and usage.cache_creation_tokens,
    input_tokens = usage and usage.input_tokens,
    error_kind = error_kind, http_status = http_status, request_id = request_id,
    case = case ~= nil and tostring(case) or nil,
    client = ctx and ctx.client or nil, -- the gateway's client address
    prompt = prompt, response = response, error = error_text }
end

--- Logs a row (M.row_of's, maybe made in another process) in this run.
function M.append_row(row)
  if not state.enabled or state.broken then return end
  local log = state.log or open { started_at = row.started_at, model = { simulated = row.simulated } }
  if not log then return end
  local problem = log:append(row)
  if problem then warn(problem.message) end
end

-- The calllog stage (llm.pipeline): one row per call, copied to C and
-- committed off the caller's path by the writer thread.
local function on_finish(call, resp, err, partial)
  if not state.enabled or state.broken then return end
  if not state.log and not open(call) then return end
  M.append_row(M.row_of(call, resp, err, partial))
end

M.log_stage = on_finish

--- Installs the stages every call has (llm.pipeline's "core": prices and
-- this log) now; the first model does it anyway.
function M.install() pipeline.use("core") end

--- Logs to path from the next call on (the current file is flushed and
-- closed; the run keeps its id).
function M.use(path)
  if type(path) ~= "string" or path == "" then
    error("bad argument #1 to 'llm.log.use' (file path expected)", 2)
  end
  close()
  state.path, state.broken, state.warned = path, false, false
end

--- Texts (prompts, answers, errors) with each row, or not, from now on.
function M.texts(on) state.texts = on and true or false end

function M.off() state.enabled = false end
function M.on() state.enabled = true; M.install() end
function M.enabled() return state.enabled end

function M.flush()
  if not state.log then return true end
  return state.log:flush()
end

--- A reader over the log for queries: reader | nil, err (err.status
-- "missing" when nothing was logged yet).
function M.reader(path)
  if path == nil then
    local err
    path, err = M.path()
    if not path then return nil, errors.new("log", err.message, { status = "missing" }) end
  end
  return calllog.reader(path)
end

return M
