-- The life of one logical model call (chat, stream or embed), in one
-- place so that caches, budgets, prices, metrics and the call log plug in
-- without the model code knowing them:
--   begin(model, kind, body, opts) -> call
--   before(call) -> runs the before-hooks; the first one that returns a
--                   response (a cache hit) or nil, err (a refused budget)
--                   decides the call without a request; the decided-hooks
--                   then see that outcome (they may wait: llm.replay
--                   keeps such a call's recorded place there)
--   finish(call, resp, err [, partial]) -> runs the finish-hooks in
--                   priority order (prices first, then observers) and
--                   returns resp, err
local loop = require "_llm.loop"
local context = require "llm.context"
local errors = require "llm.errors"

local M = {}

local before_hooks, decided_hooks, finish_hooks = {}, {}, {}

local function insert(list, fn, priority)
  list[#list + 1] = { fn = fn, priority = priority or 100 }
  table.sort(list, function(a, b) return a.priority < b.priority end)
end

local function remove(list, fn)
  for i, h in ipairs(list) do
    if h.fn == fn then table.remove(list, i) return end
  end
end

--- fn(call) -> nothing to go on, or resp, or nil, err to decide the call.
function M.on_before(fn, priority) insert(before_hooks, fn, priority) end
--- fn(call, resp, err, partial): observes (or annotates) the outcome.
function M.on_finish(fn, priority) insert(finish_hooks, fn, priority) end
--- fn(call, resp, err): a before-hook decided the call (no request goes
-- out); runs in the caller's task before finish, and may wait.
function M.on_decided(fn, priority) insert(decided_hooks, fn, priority) end
function M.off(fn)
  remove(before_hooks, fn)
  remove(decided_hooks, fn)
  remove(finish_hooks, fn)
end

-- The tag and case come from opts, else from the task's llm.context (an
-- experiment labels its variants' calls that way); call.context keeps the
-- whole context for observers that need more than the tag.
function M.begin(model, kind, body, opts)
  local ctx = context.current()
  local tag, case = opts.tag, opts.case
  if ctx then
    if tag == nil then tag = ctx.tag end
    if case == nil then case = ctx.case end
  end
  return {
    model = model, kind = kind, body = body, opts = opts,
    tag = tag, case = case, context = ctx,
    t0 = loop.now(),          -- monotonic, for durations
    started_at = loop.wallclock(), -- epoch seconds, for the log
  }
end

function M.before(call)
  for _, h in ipairs(before_hooks) do
    local resp, err = h.fn(call)
    if resp ~= nil or err ~= nil then
      for _, d in ipairs(decided_hooks) do d.fn(call, resp, err) end
      return resp, err
    end
  end
  return nil
end

function M.finish(call, resp, err, partial)
  call.t_end = loop.now()
  for _, h in ipairs(finish_hooks) do h.fn(call, resp, err, partial) end
  return resp, err
end

-- A call whose function exits before finish() (its task cancelled while
-- the request was in flight, or an error raised through it) still has to
-- end, or what before() took stays taken: budget reservations, the cache's
-- in-flight entry. `local _ <close> = calls.guard(call [, abort])` ends it
-- as cancelled on such an exit; abort(call) replaces that (a stream closes
-- its transfer). The hooks run without yielding, as always.
local guard_mt = {
  __close = function(g, raised)
    local call = g.call
    if call.t_end ~= nil then return end
    if g.abort then return g.abort(call) end
    M.finish(call, nil, errors.new("cancelled", raised == nil
      and "the call was cancelled before it finished"
      or "the call ended by an error: " .. tostring(raised),
      { retries = call.retries or 0 })) -- attempts made before the cut
  end,
}

function M.guard(call, abort)
  return setmetatable({ call = call, abort = abort }, guard_mt)
end

return M
