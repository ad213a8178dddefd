-- llm.context: values that follow a task and the tasks it spawns, so that
-- code several calls deep can be labelled without passing the label down.
-- llm.experiment uses it to give every model call a variant makes the
-- variant's tag and the case's id (llm.calls reads them when opts has none).
--
--   llm.context.with({ tag = "fast", case = 7 }, fn, ...) -> fn's results
--   llm.context.get("tag") -> "fast" inside fn (and in tasks it spawns)
--   llm.context.current() -> the context table, or nil
--
-- A context is per task, not per coroutine: every coroutine of a task sees
-- it. A task spawned inside `with` starts with the context its parent had
-- at spawn time, and keeps it when the parent's `with` ends (a background
-- task started by a variant stays labelled as that variant's).
local loop = require "_llm.loop"

local M = {}

local by_task = setmetatable({}, { __mode = "k" })
local NO_TASK = {}   -- the key for code that runs outside any task
local current_task, raw_spawn = loop.current, loop.spawn

local function key()
  return current_task() or NO_TASK
end

--- The context of the running task (a table; read it, do not change it),
-- or nil when none was set.
function M.current()
  return by_task[key()]
end

--- One value of the current context, or nil.
function M.get(name)
  local ctx = by_task[key()]
  return ctx and ctx[name]
end

local restore_mt = {
  __close = function(r) by_task[r.key] = r.prev end,
}

--- Runs fn(...) with the given values added to the current context (values
-- not named stay as they were); the previous context comes back when fn
-- returns or raises.
function M.with(values, fn, ...)
  if type(values) ~= "table" then
    error("bad argument #1 to 'llm.context.with' (table expected, got " .. type(values) .. ")", 2)
  end
  if type(fn) ~= "function" and not (getmetatable(fn) or {}).__call then
    error("bad argument #2 to 'llm.context.with' (function expected, got " .. type(fn) .. ")", 2)
  end
  local k = key()
  local prev = by_task[k]
  local ctx = setmetatable({}, prev and { __index = prev } or nil)
  for name, v in pairs(values) do ctx[name] = v end
  by_task[k] = ctx
  local restore <close> = setmetatable({ key = k, prev = prev }, restore_mt)
  return fn(...)
end

--- spawn(fn, ...) -> task: the one spawn of the library (llm.spawn, and
-- llm.async's combinators use it): loop.spawn, but the new task starts
-- with its parent's context. Code that spawns must use this one, never
-- copy a context into a task itself.
function M.spawn(fn, ...)
  local parent = current_task()
  local ctx = parent and by_task[parent]
  -- without a context (the common case) the spawn is untouched; a
  -- non-function goes straight to the C spawn for its usual error
  if ctx == nil or type(fn) ~= "function" then return raw_spawn(fn, ...) end
  return raw_spawn(function(...)
    by_task[current_task()] = ctx
    return fn(...)
  end, ...)
end

return M
