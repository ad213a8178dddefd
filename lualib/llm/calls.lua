-- The life of one logical model call (chat, stream or embed): the call
-- record and the hooks API. The stages themselves, their order and who
-- installs them are in llm.pipeline; this file is what model code calls:
--   begin(model, kind, body, opts) -> call
--   before(call) -> the before-stages; the first one that returns a
--                   response (a cache hit) or nil, err (a refused budget)
--                   decides the call without a request; the decided-stages
--                   then see that outcome (they may wait: llm.replay
--                   keeps such a call's recorded place there)
--   finish(call, resp, err [, partial]) -> the finish-stages (usage check,
--                   prices, budget, cache, call log, observers), shielded
--                   from interrupts and without yielding, then the
--                   after-stages, which may wait; returns resp, err
--   guard(call [, abort]) -> a <close> value that ends a call its caller
--                   left early (cancelled, or an error raised through it)
local loop = require "_llm.loop"
local context = require "llm.context"
local errors = require "llm.errors"
local pipeline = require "llm.pipeline"
local usage_check = require "llm.usage_check"

local M = {}

-- Misuse is refused here, at registration, not by failing every call
-- afterwards. A callable table is fine.
local function check_hook(fname, fn, priority)
  local callable = type(fn) == "function"
    or (getmetatable(fn) ~= nil and type(getmetatable(fn).__call) == "function")
  if not callable then
    error(("bad argument #1 to '%s' (function expected, got %s)"):format(fname, type(fn)), 3)
  end
  if priority ~= nil and (type(priority) ~= "number" or priority ~= priority) then
    error(("bad argument #2 to '%s' (number expected, got %s)"):format(fname, type(priority)), 3)
  end
end

--- fn(call) -> nothing to go on, or resp, or nil, err to decide the call.
function M.on_before(fn, priority)
  check_hook("llm.calls.on_before", fn, priority)
  pipeline.add("before", fn, priority)
end
--- fn(call, resp, err, partial): observes (or annotates) the outcome.
function M.on_finish(fn, priority)
  check_hook("llm.calls.on_finish", fn, priority)
  pipeline.add("finish", fn, priority)
end
--- fn(call, resp, err, partial): runs after the finish-hooks, in the
-- calling task, and may wait; not run for a call ended by cancellation
-- or from where the task cannot wait (a <close> handler).
function M.on_after(fn, priority)
  check_hook("llm.calls.on_after", fn, priority)
  pipeline.add("after", fn, priority)
end
--- fn(call, resp, err): a before-hook decided the call (no request goes
-- out); runs in the caller's task before finish, and may wait.
function M.on_decided(fn, priority)
  check_hook("llm.calls.on_decided", fn, priority)
  pipeline.add("decided", fn, priority)
end
M.off = pipeline.remove

local now, wallclock, current_context = loop.now, loop.wallclock, context.current
local call_mt = { __name = "llm.call" }

-- The tag and case come from opts, else from the task's llm.context (an
-- experiment labels its variants' calls that way); call.context keeps the
-- whole context for observers that need more than the tag.
function M.begin(model, kind, body, opts)
  local ctx = current_context()
  local tag, case = opts.tag, opts.case
  if ctx then
    if tag == nil then tag = ctx.tag end
    if case == nil then case = ctx.case end
  end
  return setmetatable({
    model = model, kind = kind, body = body, opts = opts,
    tag = tag, case = case, context = ctx,
    t0 = now(),                -- monotonic, for durations
    started_at = wallclock(),  -- epoch seconds, for the log
  }, call_mt)
end

M.before = pipeline.before

--- Checks the usage of a response (llm.usage_check; for tests and tools).
M.check_usage = usage_check.check
M.MAX_TOKENS = usage_check.MAX_TOKENS

local pipeline_finish = pipeline.finish

function M.finish(call, resp, err, partial)
  call.t_end = now()
  pipeline_finish(call, resp, err, partial)
  return resp, err
end

-- A call whose function exits before finish() (its task cancelled while
-- the request was in flight, or an error raised through it) still has to
-- end, or what before() took stays taken: budget reservations, the cache's
-- in-flight entry. `local _ <close> = calls.guard(call [, abort])` ends it
-- as cancelled on such an exit; abort(call) replaces that (a stream closes
-- its transfer). The hooks run without yielding, as always. The record
-- itself is the guard: no extra table per call.
call_mt.__close = function(call, raised)
  if call.t_end ~= nil then return end
  local abort = call.abort
  if abort then return abort(call) end
  M.finish(call, nil, errors.new("cancelled", raised == nil
    and "the call was cancelled before it finished"
    or "the call ended by an error: " .. tostring(raised),
    { retries = call.retries or 0 })) -- attempts made before the cut
end

function M.guard(call, abort)
  call.abort = abort
  return call
end

return M
