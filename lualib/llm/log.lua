-- llm.log: every model call (success, failure, cache hit) becomes a row of
-- the call log, $XDG_DATA_HOME/llmrun/runs.db (see src/calllog.h for the
-- file and its guarantees). This module is the policy: when to log, the
-- run this process is, and what to do when the log cannot be written
-- (warn once, keep calling: logging never fails a call).
--
--   llm.log.off() / llm.log.on() / llm.log.enabled()
--   llm.log.run_id()   this process's run id
--   llm.log.path()     the database file
--   llm.log.use(path)  log to another file from now on (tests, experiments)
--   llm.log.flush()    commit what is buffered -> true | nil, err
--   llm.log.reader()   a reader for queries (see _llm.calllog)
--
-- LLMRUN_LOG=0 (or off/false/no) turns logging off for the process; so
-- does a dry run (`llmrun --dry-run`, LLMRUN_DRY_RUN): its simulated calls
-- are an estimate, not a run to report on.
local calllog = require "_llm.calllog"
local host = require "_llm.host"
local loop = require "_llm.loop"
local pipeline = require "llm.pipeline"
local outcome = require "llm.outcome"

local M = {}

local function env_off()
  local v = os.getenv("LLMRUN_LOG")
  if v ~= nil and (v == "0" or v:lower() == "off" or v:lower() == "false" or v:lower() == "no") then
    return true
  end
  local dry = os.getenv("LLMRUN_DRY_RUN")
  return dry ~= nil and dry ~= "" and dry ~= "0"
end

local state = {
  enabled = not env_off(),
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

local function close()
  local log = state.log
  if not log then return end
  state.log = nil
  local ok, err = log:flush()
  if not ok then warn(err) end
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
    warn("the call log is off: " .. tostring(err))
    return nil
  end
  log:set_run {
    run_id = M.run_id(), script = script_name(), version = host.version,
    started_at = call.started_at or loop.wallclock(), simulated = call.model and call.model.simulated or false,
  }
  state.log = log
  if not state.exit_hooked then
    state.exit_hooked = true
    host.on_exit(close)
  end
  return log
end

-- The calllog stage (llm.pipeline): one row per call, copied to C and
-- committed off the caller's path by the writer thread.
local function on_finish(call, resp, err, partial)
  if not state.enabled or state.broken then return end
  local log = state.log or open(call)
  if not log then return end
  local status, _, latency, ttft, cost, usage, retries, cache = outcome(call, resp, err, partial)
  local m = call.model or {}
  local prompt, completion, cached, creation, input
  if usage then
    prompt, completion, cached = usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens
    creation, input = usage.cache_creation_tokens, usage.input_tokens
  end
  local ekind, estatus, rid
  if err ~= nil then
    if type(err) == "table" then
      ekind, estatus, rid = err.kind, err.status, err.request_id
    else
      ekind = "error"
    end
  elseif resp then
    rid = resp.request_id
  end
  local case = call.case
  if case ~= nil then case = tostring(case) end
  local problem = log:append(call.tag, case, m.name, m.provider, call.kind, m.simulated,
    call.started_at, latency, ttft, prompt, completion, cached, creation, input, cost,
    cache, status, math.tointeger(retries) or 0, ekind, math.tointeger(estatus), rid)
  if problem then warn(problem) end
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

function M.off() state.enabled = false end
function M.on() state.enabled = true; M.install() end
function M.enabled() return state.enabled end

function M.flush()
  if not state.log then return true end
  return state.log:flush()
end

--- A reader over the log for queries: reader | nil, err, missing.
function M.reader(path)
  if path == nil then
    local err
    path, err = M.path()
    if not path then return nil, err, true end
  end
  return calllog.reader(path)
end

return M
