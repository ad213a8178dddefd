-- llm.pipeline: the stages every model call (m:chat, m:stream, m:embed)
-- passes, in order, in one table; in the spirit of Lua's linit.c.
--
-- A call is: calls.begin (the record) -> BEFORE stages (the first that
-- answers decides the call without a request; then the DECIDED stages see
-- that outcome, and may wait) -> SEND (transport: the request, its
-- attempts and retries; llm.model's Model:send, through the send taps) ->
-- FINISH stages (no waiting, shielded from interrupts) -> AFTER stages (may
-- wait). Within a phase, stages run by priority, lower first; equal
-- priorities run in registration order (a stable order, not table.sort's).
--
--  phase    prio  stage           owner: module . function        installed
--  -------  ----  --------------  ------------------------------  ----------------------
--  before     0   replay.begin    llm.replay . before_stage       llm.replay.start
--                   keeps each call's recorded turn; first, before a cache
--                   looks at the call (a hit's place is part of the recording)
--  before     1   record.begin    llm.record . before_stage       llm.record.start
--                   numbers the call in the order calls begin (they are
--                   written when they finish, in another order)
--  before    20   cache.lookup    llm.cache . lookup_stage        a model gets a cache
--                   a hit answers before anything is spent, paced or sent; a
--                   shared (Redis) cache takes the cross-process lock of a
--                   miss here (llm.cache_redis) and cache.store releases it
--  before    50   pacing          llm.limits . pace_stage         the first model
--                   after the cache (a hit takes no rate), before the budget
--                   (a call waiting for a slot holds no reservation); waits
--                   for the rpm/tpm buckets and the concurrency window
--  before    90   budget.reserve  llm.budget . reserve_stage      the first llm.budget
--                   reserves the worst case of a call that will be sent (a
--                   budget shared through Redis reserves there, llm.budget_redis)
--  before   200   batch.defer     llm.batch_defer . defer_stage   the first collector
--                   a call inside a batch variant waits for its batch's answer;
--                   after the cache and the budget: a hit or a refusal is never batched
--  before   210   sim.responder   llm.sim_responder . before_stage  llm.sim.responder(fn)
--                   asks the user's responder for a simulated call's answer,
--                   which goes out with the request (the simulator answers it);
--                   last: a hit, a refusal or a batched call never reaches it
--  decided   50   replay.turn     llm.replay . decided_stage      llm.replay.start
--                   a call a cache or budget decided waits for its recorded
--                   turn to finish (it may wait here, not in the finish stages)
--  send      10   record.tap      llm.record . send_tap           llm.record.start
--                   nearest the caller: sees each attempt as the caller does,
--                   asks _llm.http for the body's pieces and their times
--  send      90   replay.tap      llm.replay . send_tap           llm.replay.start
--                   nearest the network: answers from the cassette's
--                   loopback replayer (or the simulator, or lets it go live)
--                   The send itself is Model:send (model.lua) through
--                   llm.transport.attempt; a Batch API request and the
--                   gateway's pass-through call go through Model:send too,
--                   with opts.net (the method, content type and size cap of
--                   the Batch API; the client's header lines)
--  finish     0   usage.check     llm.usage_check . stage         always (this file loads)
--                   unusable token counts are dropped before anyone reads them
--  finish     5   replay.mark     llm.replay . finish_stage       llm.replay.start
--                   marks a replayed answer (r.replayed) for everything after
--  finish    10   pricing         llm.pricing . price_stage       the first model
--                   r.cost (and r.saved.cost of a hit) for everything after
--  finish    11   batch.price     llm.batch . price_stage         the first batch sent
--                   the Batch API's price, before the budget and the observers
--  finish    20   budget.settle   llm.budget . settle_stage       the first llm.budget
--                   the reservation becomes the real cost
--  finish    25   dryrun          llm.dryrun . dryrun_stage       llmrun --dry-run (init.lua)
--                   tallies the priced estimate of each simulated call
--  finish    30   pacing.settle   llm.limits . settle_stage       the first model
--                   refunds what the call did not use, learns from its
--                   headers, lets the next waiting calls in
--  finish    50   cache.store     llm.cache . store_stage         a model gets a cache
--                   stores good answers, counts hits, frees waiting duplicates
--  finish   100   calllog         llm.log . log_stage             the first model
--  finish   100   metrics         llm.metrics . metrics_stage     the first active tracker
--  finish   100   experiment      llm.experiment . experiment_stage  the first llm.experiment
--  finish   100   progress        llm.progress . progress_stage   the first progress line
--  finish   100   worker.log      llm.experiment_workers . log_stage  a worker's first case
--                   observers, last: they read the final resp (cost, cached...)
--  finish   150   record.write    llm.record . finish_stage       llm.record.start
--                   writes the call and the attempts its tap captured; after
--                   the prices and the call log, so the cost is in it
--  after     50   cache.audit     llm.cache . audit_stage         a model gets a cache
--                   a semantic hit's audit embeds two answers: it waits
--
-- The serve --proxy gateway makes its upstream calls through the same
-- stages (calls.begin/before/finish around Model:send); Redis backends
-- change where llm.cache and llm.budget keep their state, not the stages.
-- llm.record and llm.replay take their stages out again when they stop
-- (M.drop).
--
-- User hooks (llm.calls.on_before/on_decided/on_finish/on_after, priority
-- 100 by default) join the same lists. LLMRUN_PROFILE_STAGES=1 times every
-- stage and prints a table at exit (see the end of this file).
local loop = require "_llm.loop"

local M = {}

-- The default stages: {phase, priority, name, module, function, group}.
-- A group is installed at once by M.use(group), by the code that first
-- needs it (the "installed" column above); "core" by M.install() when the
-- first model is made, "always" below, when this file loads.
local STAGES = {
  { "before",    0, "replay.begin",   "llm.replay",         "before_stage",     "replay" },
  { "before",    1, "record.begin",   "llm.record",         "before_stage",     "record" },
  { "before",   20, "cache.lookup",   "llm.cache",          "lookup_stage",     "cache" },
  { "before",   50, "pacing",         "llm.limits",         "pace_stage",       "core" },
  { "before",   90, "budget.reserve", "llm.budget",         "reserve_stage",    "budget" },
  { "before",  200, "batch.defer",    "llm.batch_defer",    "defer_stage",      "batch_defer" },
  { "before",  210, "sim.responder",  "llm.sim_responder",  "before_stage",     "responder" },
  { "decided",  50, "replay.turn",    "llm.replay",         "decided_stage",    "replay" },
  { "send",     10, "record.tap",     "llm.record",         "send_tap",         "record" },
  { "send",     90, "replay.tap",     "llm.replay",         "send_tap",         "replay" },
  { "finish",    0, "usage.check",    "llm.usage_check",    "stage",            "always" },
  { "finish",    5, "replay.mark",    "llm.replay",         "finish_stage",     "replay" },
  { "finish",   10, "pricing",        "llm.pricing",        "price_stage",      "core" },
  { "finish",   11, "batch.price",    "llm.batch",          "price_stage",      "batch" },
  { "finish",   20, "budget.settle",  "llm.budget",         "settle_stage",     "budget" },
  { "finish",   25, "dryrun",         "llm.dryrun",         "dryrun_stage",     "dryrun" },
  { "finish",   30, "pacing.settle",  "llm.limits",         "settle_stage",     "core" },
  { "finish",   50, "cache.store",    "llm.cache",          "store_stage",      "cache" },
  { "finish",  100, "calllog",        "llm.log",            "log_stage",        "core" },
  { "finish",  100, "metrics",        "llm.metrics",        "metrics_stage",    "metrics" },
  { "finish",  100, "experiment",     "llm.experiment",     "experiment_stage", "experiment" },
  { "finish",  100, "progress",       "llm.progress",       "progress_stage",   "progress" },
  { "finish",  100, "worker.log",     "llm.experiment_workers", "log_stage",    "worker" },
  { "finish",  150, "record.write",   "llm.record",         "finish_stage",     "record" },
  { "after",    50, "cache.audit",    "llm.cache",          "audit_stage",      "cache" },
}
M.STAGES = STAGES

-- phase -> list of {fn=, priority=, seq=, name=}, kept sorted.
local lists = { before = {}, decided = {}, send = {}, finish = {}, after = {} }
M.lists = lists
local seq = 0

-- ---- profiling (LLMRUN_PROFILE_STAGES=1) ------------------------------------------------

local profile_on = (os.getenv("LLMRUN_PROFILE_STAGES") or "") ~= ""
  and os.getenv("LLMRUN_PROFILE_STAGES") ~= "0"
local prof = profile_on and {} or nil -- name -> {n=, s=, wall=}
-- CPU time of the process (os.clock): a stage that does not wait is timed
-- without the time other processes took the core meanwhile (a wall clock
-- would count it); the call log's writer thread is in it too. The send
-- waits, so it gets the wall clock (loop.now): the network's time.
local cpu, now = os.clock, loop.now
M.cpu, M.now = cpu, now

local function charge(name, t0, clock)
  local p = prof[name]
  if not p then
    p = { n = 0, s = 0, wall = clock == now }
    prof[name] = p
  end
  p.n = p.n + 1
  p.s = p.s + ((clock or cpu)() - t0)
end

--- Charges a part of the call that is not a stage (llm.model's own work:
-- "request", "encode", "parse" from t0 = M.cpu(); "send" from t0 = M.now()
-- with clock = M.now), or nil when profiling is off, so the caller pays
-- one upvalue test: `if timed then timed("parse", t0) end`.
M.timed = profile_on and charge or nil

local function timed_stage(name, fn)
  return function(...)
    local t0 = cpu()
    local a, b = fn(...)
    charge(name, t0)
    return a, b
  end
end

-- ---- registration ---------------------------------------------------------------------------

--- add(phase, fn, priority, name): fn joins the phase after every entry
-- of the same or a lower priority (so ties keep registration order).
function M.add(phase, fn, priority, name)
  local list = assert(lists[phase], "unknown pipeline phase")
  priority = priority or 100
  seq = seq + 1
  local run = fn
  if prof and phase ~= "send" then run = timed_stage(name or ("hook@" .. priority), fn) end
  local entry = { fn = run, hook = fn, priority = priority, seq = seq, name = name }
  local i = #list
  while i > 0 and list[i].priority > priority do i = i - 1 end
  table.insert(list, i + 1, entry)
end

--- Removes fn from every phase.
function M.remove(fn)
  for _, list in pairs(lists) do
    for i = #list, 1, -1 do
      if list[i].hook == fn then table.remove(list, i) end
    end
  end
end

--- The names (or "?") of a phase's entries, in the order they run.
function M.order(phase)
  local out = {}
  for i, e in ipairs(lists[phase]) do out[i] = e.name or "?" end
  return out
end

local installed = {}

--- Installs the default stages of one group (once), e.g. "budget" when the
-- first budget is made. The owning modules are loaded here, not before.
function M.use(group)
  if installed[group] then return end
  installed[group] = true
  for _, s in ipairs(STAGES) do
    if s[6] == group then
      local fn = require(s[4])[s[5]]
      M.add(s[1], assert(fn, s[4] .. "." .. s[5] .. " is missing"), s[2], s[3])
    end
  end
end

--- Takes a group's stages out again (llm.record and llm.replay when they
-- stop); a later M.use(group) puts them back.
function M.drop(group)
  if not installed[group] then return end
  installed[group] = nil
  for _, s in ipairs(STAGES) do
    if s[6] == group then M.remove(require(s[4])[s[5]]) end
  end
end

--- The stages every call has: llm.model calls it for every model it makes
-- (only the first one installs anything).
function M.install()
  M.use("core")
end

M.use("always")

-- ---- running ---------------------------------------------------------------------------------

local before_list, decided_list = lists.before, lists.decided
local finish_list, after_list = lists.finish, lists.after

--- Before-stages: the first that returns resp, or nil, err, decides the
-- call; the decided-stages then see that outcome (in the caller's task:
-- they may wait).
function M.before(call)
  for i = 1, #before_list do
    local resp, err = before_list[i].fn(call)
    if resp ~= nil or err ~= nil then
      for j = 1, #decided_list do decided_list[j].fn(call, resp, err) end
      return resp, err
    end
  end
  return nil
end

local function run_finish(call, resp, err, partial)
  for i = 1, #finish_list do finish_list[i].fn(call, resp, err, partial) end
end

-- The finish-stages run shielded from interrupts: Ctrl-C or SIGTERM in the
-- middle would leave, say, a cache entry without its call log row.
local shield = loop.shield
local isyieldable = coroutine.isyieldable

--- Finish-stages (shielded, no waiting), then after-stages (they may wait;
-- skipped for a cancelled call and where the task cannot wait).
function M.finish(call, resp, err, partial)
  shield(run_finish, call, resp, err, partial)
  if after_list[1] and isyieldable() and not (err and err.kind == "cancelled") then
    for i = 1, #after_list do after_list[i].fn(call, resp, err, partial) end
  end
end

--- The send taps: tap(net, url, send, call) -> a send function for this
-- request (and optionally a copy of net with fields changed), or nil to
-- stay out, or nil, err to fail it unsent; send(kind, net, url, body,
-- key_line, n) makes attempt n (0 first; "request" or "stream") and
-- returns what _llm.http returns. The lowest priority is nearest the
-- caller (llm.transport.sender chains them).
M.send_taps = lists.send

-- ---- the profile table, at exit ---------------------------------------------------------------

if prof then
  require("_llm.host").on_exit(function()
    local rows = {}
    for name, p in pairs(prof) do rows[#rows + 1] = { name = name, n = p.n, s = p.s, wall = p.wall } end
    table.sort(rows, function(a, b) return a.s > b.s end)
    local out = { "llmrun: stage profile (CPU time per call; send: wall time, with the network's)\n",
                  ("  %-18s %9s %12s %10s\n"):format("stage", "calls", "total ms", "us/call") }
    for _, r in ipairs(rows) do
      out[#out + 1] = ("  %-18s %9d %12.2f %10.2f%s\n"):format(r.name, r.n, r.s * 1e3,
        r.s / r.n * 1e6, r.wall and "  (wall)" or "")
    end
    io.stderr:write(table.concat(out))
  end)
end

return M
