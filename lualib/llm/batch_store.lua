-- Where llm.batch records the batches it submits (src/store/batchstore.h says
-- what a record holds and why it is its own file): batches.db beside the
-- call log ($XDG_DATA_HOME/llmrun/batches.db by default, or beside the
-- file llm.log.use named), or the path given as llm.batch's `store`
-- option. A record that cannot be written never fails a batch: llmrun
-- warns once (a rerun will then not find the batch) and goes on.
local C = require "_llm.batchstore"
local loop = require "_llm.loop"

local M = {}

local open_stores = {}   -- path -> store
local warned = {}

local function warn(path, err)
  if warned[path] then return end
  warned[path] = true
  io.stderr:write("llmrun: warning: cannot keep the batch record (", tostring(err),
    "): a rerun of this script will not find its batches\n")
end

--- The default path: batches.db in the call log's directory.
function M.default_path()
  local log_path, err = require("llm.log").path()
  if not log_path then return nil, err end
  local dir = log_path:match("^(.*)/[^/]*$") or "."
  return dir .. "/batches.db"
end

local function dry_run()
  local v = os.getenv("LLMRUN_DRY_RUN")
  return v ~= nil and v ~= "" and v ~= "0"
end

--- The store at path (nil: the default), opened once per process; nil
-- (after one warning) when it cannot be opened; false turns it off, and
-- so does a dry run (its batches are the simulator's, an estimate).
function M.get(path)
  if path == false or (path == nil and dry_run()) then return nil end
  local p, err = path, nil
  if p == nil then p, err = M.default_path() end
  if not p then
    warn("default", err)
    return nil
  end
  local s = open_stores[p]
  if s then return s end
  s, err = C.open(p)
  if not s then
    warn(p, err)
    return nil
  end
  open_stores[p] = s
  return s
end

--- Runs store:method(...), warning once instead of failing.
function M.call(store, method, ...)
  if not store then return nil end
  local res, err = store[method](store, ...)
  if res == nil and err then warn("write", err) end
  return res
end

function M.now() return loop.wallclock() end

return M
