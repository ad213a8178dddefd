-- The life of one logical model call (chat, stream or embed), in one
-- place so that caches, budgets, prices, metrics and the call log plug in
-- without the model code knowing them:
--   begin(model, kind, body, opts) -> call
--   before(call) -> runs the before-hooks; the first one that returns a
--                   response (a cache hit) or nil, err (a refused budget)
--                   decides the call without a request; the decided-hooks
--                   then see that outcome (they may wait: llm.replay
--                   keeps such a call's recorded place there)
--   finish(call, resp, err [, partial]) -> checks the usage the server
--                   reported (check_usage), runs the finish-hooks in
--                   priority order (prices first, then observers),
--                   shielded from interrupts and without yielding, then
--                   the after-hooks, which may wait (a semantic cache's
--                   audit embeds two answers), and returns resp, err
local loop = require "_llm.loop"
local context = require "llm.context"
local errors = require "llm.errors"

local M = {}

local before_hooks, decided_hooks, finish_hooks, after_hooks = {}, {}, {}, {}

local function insert(list, fn, priority)
  list[#list + 1] = { fn = fn, priority = priority or 100 }
  table.sort(list, function(a, b) return a.priority < b.priority end)
end

local function remove(list, fn)
  for i, h in ipairs(list) do
    if h.fn == fn then table.remove(list, i) return end
  end
end

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
  insert(before_hooks, fn, priority)
end
--- fn(call, resp, err, partial): observes (or annotates) the outcome.
function M.on_finish(fn, priority)
  check_hook("llm.calls.on_finish", fn, priority)
  insert(finish_hooks, fn, priority)
end
--- fn(call, resp, err, partial): runs after the finish-hooks, in the
-- calling task, and may wait; not run for a call ended by cancellation
-- or from where the task cannot wait (a <close> handler).
function M.on_after(fn, priority)
  check_hook("llm.calls.on_after", fn, priority)
  insert(after_hooks, fn, priority)
end
--- fn(call, resp, err): a before-hook decided the call (no request goes
-- out); runs in the caller's task before finish, and may wait.
function M.on_decided(fn, priority)
  check_hook("llm.calls.on_decided", fn, priority)
  insert(decided_hooks, fn, priority)
end
function M.off(fn)
  remove(before_hooks, fn)
  remove(decided_hooks, fn)
  remove(finish_hooks, fn)
  remove(after_hooks, fn)
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

-- ---- usage the server reported -----------------------------------------------------

-- Token counts above this are not a call's: a server bug or garbage.
M.MAX_TOKENS = 1e10

-- The first field of usage that is not a whole number of tokens in
-- 0..MAX_TOKENS (negative, fractional, 1e308, inf, nan, not a number),
-- with its value; nil when all are fine.
local function is_count(v)
  return type(v) == "number" and v == v and v >= 0 and v <= M.MAX_TOKENS and v == math.floor(v)
end

-- The usual fields first, in this order, so the warning names the same
-- field every time; then any other.
local FIELDS = { "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
                 "reasoning_tokens", "input_tokens", "cache_creation_tokens",
                 "cache_creation_1h_tokens" }

local function bad_count(u)
  for _, k in ipairs(FIELDS) do
    local v = u[k]
    if v ~= nil and not is_count(v) then return k, v end
  end
  for k, v in pairs(u) do
    if not is_count(v) then return k, v end
  end
  return nil
end

local warned_usage = false

local function reject_usage(call, r, field, value)
  r.usage = nil
  r.usage_invalid = true
  if warned_usage then return end
  warned_usage = true
  local m = call and call.model or {}
  local name = m.provider and m.name and (m.provider .. "/" .. m.name) or tostring(m.name or "a model")
  io.stderr:write(("llmrun: warning: the server's token usage for %s is unusable (%s = %s): "
    .. "such calls get no usage and an unknown cost (r.usage_invalid = true); "
    .. "reported once\n"):format(name, tostring(field),
      type(value) == "number" and ("%.17g"):format(value) or tostring(value)))
end

--- Checks the usage of a response (resp or partial) and of what a cache
-- hit saved (r.saved.usage), for every provider, before prices, budgets
-- and the call log see it. Unusable usage is dropped: r.usage = nil,
-- r.usage_invalid = true, so the cost is unknown (nil), never absurd; the
-- call itself still succeeds. Returns false when it dropped something.
function M.check_usage(call, r)
  if type(r) ~= "table" then return true end
  local fine = true
  local u = rawget(r, "usage")
  if u ~= nil then
    local field, value
    if type(u) ~= "table" then field, value = "usage", u else field, value = bad_count(u) end
    if field ~= nil then
      reject_usage(call, r, field, value)
      fine = false
    end
  end
  local saved = rawget(r, "saved")
  if type(saved) == "table" and saved.usage ~= nil then
    local su = saved.usage
    local field, value
    if type(su) ~= "table" then field, value = "usage", su else field, value = bad_count(su) end
    if field ~= nil then
      reject_usage(call, saved, field, value)
      fine = false
    end
  end
  return fine
end

local function run_finish_hooks(call, resp, err, partial)
  M.check_usage(call, resp or partial)
  for _, h in ipairs(finish_hooks) do h.fn(call, resp, err, partial) end
end

-- The hooks run shielded from interrupts: Ctrl-C or SIGTERM in the middle
-- would leave, say, a cache entry without its call log row.
local shield = loop.shield

function M.finish(call, resp, err, partial)
  call.t_end = loop.now()
  shield(run_finish_hooks, call, resp, err, partial)
  if after_hooks[1] and coroutine.isyieldable() and not (err and err.kind == "cancelled") then
    for _, h in ipairs(after_hooks) do h.fn(call, resp, err, partial) end
  end
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
