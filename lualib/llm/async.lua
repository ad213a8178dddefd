-- Combinators over the task primitives: map, parallel, race, with_timeout
-- and a semaphore. Plain Lua: spawn, suspend and wake are all they need.
--
-- Error policy: an error raised inside a function given to map, parallel
-- or race cancels the sibling tasks and is re-raised in the caller, with
-- the traceback of where it happened appended (for string errors). With
-- {errors = "collect"}, map and parallel return every error instead.
local loop = require "_llm.loop"
local errors = require "llm.errors"

local spawn = require("llm.context").spawn -- children inherit the context
local current, suspend, wake, sleep = loop.current, loop.suspend,
  loop.wake, loop.sleep
local pack, unpack = table.pack, table.unpack
local isyieldable = coroutine.isyieldable

local M = {}

M.default_concurrency = 16

-- ---- helpers ---------------------------------------------------------------

local function callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return type(mt) == "table" and mt.__call ~= nil
end

local function argerror(n, fname, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 3)
end

-- The caller will suspend: fail early and clearly where it cannot.
local function must_wait(fname)
  local me = current()
  if me == nil then
    error(fname .. " must be called from a task (the script body, a REPL line "
      .. "or a function given to llm.spawn)", 3)
  end
  if not isyieldable() then
    error(fname .. " cannot wait here (inside require, a metamethod or a C "
      .. "callback such as a table.sort comparator); call it from the script "
      .. "body or a task instead", 3)
  end
  return me
end

-- xpcall handler: keep the error value and where it was raised.
local function capture(err)
  return { err = err, traceback = debug.traceback(nil, 2) }
end

-- Re-raise a captured error in the caller, traceback included.
local function rethrow(cap)
  local err = cap.err
  if type(err) == "string" and cap.traceback then
    err = err .. "\n" .. cap.traceback:gsub("^stack traceback:", "task traceback:")
  end
  error(err, 0)
end
M.rethrow = rethrow

local function check_errors_opt(fname, opts)
  local policy = opts.errors
  if policy ~= nil and policy ~= "raise" and policy ~= "collect" then
    argerror(3, fname, "errors must be \"raise\" or \"collect\", got " .. tostring(policy))
  end
  return policy == "collect"
end

local function check_concurrency(fname, c)
  if c == nil then return M.default_concurrency end
  if math.type(c) ~= "integer" or c < 1 then
    argerror(3, fname, "concurrency must be a positive integer, got " .. tostring(c))
  end
  return c
end

-- ---- map ---------------------------------------------------------------------

--- llm.map(list, fn [, opts]) -> results, errs
-- Calls fn(item, index) for every item, at most opts.concurrency at a time
-- (default 16), and returns the first result of each call in input order.
-- errs[i] holds the second result of a call that returned nil, err (the
-- runtime-failure convention), or with {errors="collect"} the error it
-- raised. opts.on_progress(done, total) is called after each item; without
-- it, a progress line is drawn on stderr when that is a terminal and there
-- are more than a few items (llm.progress), unless opts.progress == false.
function M.map(list, fn, opts)
  if type(list) ~= "table" then argerror(1, "llm.map", "table expected, got " .. type(list)) end
  if not callable(fn) then argerror(2, "llm.map", "function expected, got " .. type(fn)) end
  if opts ~= nil and type(opts) ~= "table" then argerror(3, "llm.map", "table expected, got " .. type(opts)) end
  opts = opts or {}
  local concurrency = check_concurrency("llm.map", opts.concurrency)
  local collect = check_errors_opt("llm.map", opts)
  local on_progress = opts.on_progress
  local n = #list
  local results, errs = {}, {}
  if n == 0 then return results, errs end
  local me = must_wait("llm.map")
  local progress <close> = on_progress == nil and opts.progress ~= false
    and require("llm.progress").auto(n) or nil
  if progress then on_progress = progress.update end

  local next_index, active, done, failure = 1, 0, 0, nil
  local function worker()
    while failure == nil do
      local i = next_index
      if i > n then break end
      next_index = i + 1
      local ok, v, e = xpcall(fn, capture, list[i], i)
      if ok then
        results[i] = v
        if v == nil and e ~= nil then errs[i] = e end
      elseif collect then
        errs[i] = v.err
      else
        failure = v
      end
      done = done + 1
      if on_progress then
        -- a failing progress callback fails the map like a failing item
        local pok, perr = xpcall(on_progress, capture, done, n)
        if not pok and failure == nil then failure = perr end
      end
    end
    active = active - 1
    if active == 0 or failure ~= nil then wake(me) end
  end

  local workers = {}
  for w = 1, math.min(concurrency, n) do
    active = active + 1
    workers[w] = spawn(worker)
  end
  while active > 0 and failure == nil do suspend() end
  if failure ~= nil then
    for _, t in ipairs(workers) do t:cancel() end
    rethrow(failure)
  end
  return results, errs
end

--- llm.parallel(fns [, opts]) -> results, errs
-- Runs every function in fns concurrently (opts as for llm.map).
function M.parallel(fns, opts)
  if type(fns) ~= "table" then argerror(1, "llm.parallel", "table expected, got " .. type(fns)) end
  for i, f in ipairs(fns) do
    if not callable(f) then
      argerror(1, "llm.parallel", "element " .. i .. " is a " .. type(f) .. ", not a function")
    end
  end
  opts = opts or {}
  if opts.concurrency == nil then
    opts = setmetatable({ concurrency = math.max(#fns, 1) }, { __index = opts })
  end
  return M.map(fns, function(f) return f() end, opts)
end

--- llm.race(fns) -> the results of the first function to return a truthy
-- first value; the others are cancelled. When none does, returns the
-- results of the last one to finish (e.g. nil, err), or re-raises the
-- first error if they all raised. Useful for hedged requests.
function M.race(fns)
  if type(fns) ~= "table" or #fns == 0 then
    argerror(1, "llm.race", "non-empty list of functions expected")
  end
  for i, f in ipairs(fns) do
    if not callable(f) then
      argerror(1, "llm.race", "element " .. i .. " is a " .. type(f) .. ", not a function")
    end
  end
  local me = must_wait("llm.race")
  local n, finished = #fns, 0
  local winner, last, first_err
  local tasks = {}
  for i, f in ipairs(fns) do
    tasks[i] = spawn(function()
      local r = pack(xpcall(f, capture))
      finished = finished + 1
      if winner ~= nil then return end
      if r[1] and r[2] then
        winner = r
      elseif r[1] then
        last = r
      elseif first_err == nil then
        first_err = r[2]
      end
      if winner ~= nil or finished == n then wake(me) end
    end)
  end
  while winner == nil and finished < n do suspend() end
  for _, t in ipairs(tasks) do t:cancel() end
  local r = winner or last
  if r then return unpack(r, 2, r.n) end
  rethrow(first_err)
end

--- llm.with_timeout(seconds, fn, ...) -> fn's results, or
-- nil, err with err.kind == "timeout" when fn took longer (it is cancelled).
-- seconds = math.huge means no limit.
function M.with_timeout(seconds, fn, ...)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 then
    argerror(1, "llm.with_timeout", "number of seconds >= 0 expected, got " .. tostring(seconds))
  end
  if not callable(fn) then argerror(2, "llm.with_timeout", "function expected, got " .. type(fn)) end
  local me = must_wait("llm.with_timeout")
  local args = pack(...)
  local result, timed_out
  local work = spawn(function()
    result = pack(xpcall(fn, capture, unpack(args, 1, args.n)))
    wake(me)
  end)
  -- no timer for math.huge: llm.sleep refuses it, and the timer task
  -- would fail as an uncaught error
  local timer = seconds < math.huge and spawn(function()
    sleep(seconds)
    timed_out = true
    wake(me)
  end)
  while result == nil and not timed_out do suspend() end
  work:cancel()
  if timer then timer:cancel() end
  if result == nil then
    return nil, errors.new("timeout", ("timed out after %g s"):format(seconds))
  end
  if not result[1] then rethrow(result[2]) end
  return unpack(result, 2, result.n)
end

-- ---- semaphore ------------------------------------------------------------------

local Semaphore = {}
Semaphore.__index = Semaphore
Semaphore.__name = "llm.semaphore"

--- llm.semaphore(n) -> a counting semaphore with n permits. Waiters are
-- served first come, first served; a task cancelled while waiting gives
-- up its place (or passes on a permit it had just been granted).
function M.semaphore(n)
  if math.type(n) ~= "integer" or n < 0 then
    argerror(1, "llm.semaphore", "non-negative integer expected, got " .. tostring(n))
  end
  return setmetatable({ permits = n, waiters = {}, head = 1, tail = 0 }, Semaphore)
end

local acquire_guard = {
  __close = function(g)
    local entry = g.entry
    if entry.done then return end
    entry.cancelled = true
    if entry.granted then g.sem:release() end
  end,
}

function Semaphore:acquire()
  if self.permits > 0 and self.head > self.tail then
    self.permits = self.permits - 1
    return
  end
  local me = must_wait("semaphore:acquire")
  local entry = { task = me }
  self.tail = self.tail + 1
  self.waiters[self.tail] = entry
  local guard <close> = setmetatable({ entry = entry, sem = self }, acquire_guard)
  while not entry.granted do suspend() end
  entry.done = true
end

function Semaphore:release()
  while self.head <= self.tail do
    local entry = self.waiters[self.head]
    self.waiters[self.head] = nil
    self.head = self.head + 1
    if not entry.cancelled then
      entry.granted = true
      wake(entry.task)
      return
    end
  end
  self.permits = self.permits + 1
end

local release_guard = { __close = function(g) g.sem:release() end }

--- sem:with(fn, ...) -> fn's results, holding a permit while fn runs.
function Semaphore:with(fn, ...)
  self:acquire()
  local guard <close> = setmetatable({ sem = self }, release_guard)
  return fn(...)
end

function Semaphore:available()
  return self.permits
end

return M
