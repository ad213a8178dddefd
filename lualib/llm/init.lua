-- llm: the library every llmrun script sees as the global `llm`.
--
-- Kept small so `llmrun -e ''` starts fast: the task primitives come from
-- C (_llm.loop), the combinators from llm.async, and every other part
-- (models, tokens, cache, metrics...) loads on first use through the
-- `lazy` table below.
local loop = require "_llm.loop"
local host = require "_llm.host"

require("llm.corobridge").install(loop)
-- the spawn of the library: children inherit their parent's llm.context
local context = require "llm.context"
local async = require "llm.async"
local errors = require "llm.errors"

local llm = {
  version = host.version,

  -- tasks (C primitives)
  spawn = context.spawn,
  sleep = loop.sleep,
  now = loop.now,
  wallclock = loop.wallclock,
  current = loop.current,
  -- low level: suspend the running task until another one wakes it
  suspend = loop.suspend,
  wake = loop.wake,

  -- combinators (Lua over the primitives)
  map = async.map,
  parallel = async.parallel,
  race = async.race,
  with_timeout = async.with_timeout,
  semaphore = async.semaphore,

  error = errors.new,
  is_error = errors.is,
  exit = errors.exit,
  inspect = function(v, opts) return require("llm.inspect").inspect(v, opts) end,
}

-- name -> loader; the loader's result replaces the entry on first access.
local lazy = {
  model = function() return require("llm.model").new end,
  providers = function() return require "llm.providers" end,
  http = function() return require "_llm.http" end,
  calls = function() return require "llm.calls" end,
  log = function() return require "llm.log" end,
  metrics = function() return require "llm.metrics" end,
  report = function() return require "llm.report" end,
  pricing = function() return require "llm.pricing" end,
  budget = function() return require "llm.budget" end,
  limits = function() return require "llm.limits" end,
  context = function() return context end,
  cache = function() return require "llm.cache" end,
}

function llm._lazy(name, loader)
  lazy[name] = loader
end

-- Functions run when llmrun exits, even after an error or Ctrl-C (flush a
-- log, print a summary), last registered first. They run outside any
-- task, so they cannot wait. The list is the host's (_llm.host.on_exit,
-- kept in the registry), which library modules use directly.
function llm.on_exit(fn)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'llm.on_exit' (function expected, got " .. type(fn) .. ")", 2)
  end
  host.on_exit(fn)
end

llm._lazy("sim", function() return require "llm.sim" end)
llm._lazy("tokens", function() return require "llm.tokens" end)
llm._lazy("data", function() return require "llm.data" end)
llm._lazy("experiment", function() return require "llm.experiment" end)
llm._lazy("check", function() return require "llm.check" end)
llm._lazy("compress", function() return require "llm.compress" end)
llm._lazy("route", function() return require "llm.route" end)
llm._lazy("batch", function() require("llm.log").install() return require "llm.batch" end)
llm._lazy("record", function() return require "llm.record" end)
llm._lazy("replay", function() return require "llm.replay" end)
llm._lazy("cassette", function() return require "llm.cassette" end)
llm._lazy("redis", function() return require "llm.redis" end)

-- llmrun --dry-run (main.c sets LLMRUN_DRY_RUN): models go to the
-- simulator and a cost estimate prints at exit; see llm.dryrun.
-- llm.dry_run tells a script so (to skip what only a real run can tell).
local dry = os.getenv("LLMRUN_DRY_RUN")
llm.dry_run = dry ~= nil and dry ~= "" and dry ~= "0"
if llm.dry_run then require("llm.dryrun").install() end

-- LLMRUN_RECORD=run.cassette / LLMRUN_REPLAY=run.cassette: the run is
-- recorded or answered from a recording (llm.record, llm.replay).
local function set(name) local v = os.getenv(name) return v ~= nil and v ~= "" end
if set("LLMRUN_RECORD") or set("LLMRUN_REPLAY") then require("llm.replay").install_from_env() end

return setmetatable(llm, {
  __index = function(t, k)
    local loader = lazy[k]
    if loader then
      local v = loader()
      rawset(t, k, v)
      return v
    end
  end,
})
