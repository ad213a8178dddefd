-- The recorded order of a run's calls, kept in its replay.
--
-- A concurrent run's outcome can hang on the order of its calls: whether
-- a request found an answer in a cache depends on whether an earlier
-- call had finished (and stored it) when it looked. Replayed timings are
-- close to the recorded ones but not exact (a loaded machine is late by
-- milliseconds), so two events a millisecond apart could swap, and a
-- cache hit become a miss the cassette has no answer for. So the replay
-- keeps the recorded order of two events per call: its begin (before the
-- cache and budget look at it) and its finish (when its result is
-- delivered). A call that reaches one of them before its turn waits
-- (its task yields) until every event recorded before it has happened.
-- Calls are told apart by their canonical request (the match key);
-- identical requests are interchangeable.
--
-- Events that cannot wait are taken when they happen, even out of turn.
-- An event that does not come (the script changed) is skipped after its
-- recorded gap plus a grace period, so a divergent replay slows down
-- instead of hanging; after MAX_SKIPS of them the order is given up (the
-- run goes on unordered). The skips are counted.
local loop = require "_llm.loop"
local spawn = require("llm.context").spawn

local M = {}

M.GRACE = 2.0 -- seconds an overdue event is waited for beyond its recorded gap
M.MAX_SKIPS = 3 -- skipped events before the order is given up

local Order = {}
Order.__index = Order

--- events: the recorded events in order, as parallel arrays (a long
-- run has two per call; a table each would weigh on every collection):
-- {kind = {"begin" | "finish", ...}, call = {id, ...}, key = {match key
-- (begins) or false, ...}, t = {recorded seconds from the start or
-- false, ...}, n = count}. speed: time scale of a timed replay, 0 for an
-- instant one.
function M.new(events, speed)
  local o = setmetatable({
    kind = events.kind, call = events.call, key = events.key, t = events.t, n = events.n,
    head = 1, taken = {}, speed = speed or 0,
    pending = {},        -- key -> begins not yet taken
    finish_at = {},      -- call id -> its finish event's index
    begin_waiters = {},  -- key -> list of waiting entries
    finish_waiters = {}, -- call id -> waiting entry
    nwaiting = 0, watchdog = nil, head_since = loop.now(),
    stats = { waits = 0, skipped = 0, out_of_turn = 0, given_up = false },
  }, Order)
  for i = 1, o.n do
    if o.kind[i] == "begin" then
      local key = o.key[i]
      o.pending[key] = (o.pending[key] or 0) + 1
    else
      o.finish_at[o.call[i]] = i
    end
  end
  return o
end

-- The next event not yet taken.
local function skip_taken(o)
  while o.head <= o.n and o.taken[o.head] do o.head = o.head + 1 end
end

-- Wakes whoever waits for the head event.
local function wake_head(o)
  local h = o.head
  if h > o.n then
    -- the log is done: nobody needs to wait any more
    for _, list in pairs(o.begin_waiters) do
      for _, w in ipairs(list) do loop.wake(w.task) end
    end
    for _, w in pairs(o.finish_waiters) do loop.wake(w.task) end
    return
  end
  if o.kind[h] == "begin" then
    local list = o.begin_waiters[o.key[h]]
    if list and list[1] then loop.wake(list[1].task) end
  else
    local w = o.finish_waiters[o.call[h]]
    if w then loop.wake(w.task) end
  end
end

local function take(o, i)
  o.taken[i] = true
  if o.kind[i] == "begin" then o.pending[o.key[i]] = o.pending[o.key[i]] - 1 end
  if i ~= o.head then
    o.stats.out_of_turn = o.stats.out_of_turn + 1
    if os.getenv("LLMRUN_REPLAY_DEBUG") then
      local h = o.head
      io.stderr:write(("replay order: %s %d taken at head %s %d (%d ahead)\n"):format(o.kind[i], o.call[i],
        o.kind[h] or "-", o.call[h] or 0, i - h))
    end
  end
  local before = o.head
  skip_taken(o)
  if o.head ~= before then
    o.head_since = loop.now()
    wake_head(o)
  end
end

-- How long the head event may keep others waiting.
local function allowed(o)
  local t, prev = o.t[o.head], o.t[o.head - 1]
  local gap = 0
  if o.speed > 0 and t and prev then gap = math.max(0, t - prev) / o.speed end
  return gap + M.GRACE
end

local watchdog_mt = { __close = function(g) g.o.watchdog = nil end }

-- Skips overdue head events while someone waits; ends when nobody does
-- (or with the task that started it, which may be cancelled).
local function watchdog(o)
  local _ <close> = setmetatable({ o = o }, watchdog_mt)
  while o.nwaiting > 0 do
    loop.sleep(0.05)
    if o.nwaiting > 0 and o.head <= o.n and loop.now() - o.head_since > allowed(o) then
      o.stats.skipped = o.stats.skipped + 1
      if o.stats.skipped >= M.MAX_SKIPS then
        -- this run does not follow its recording: stop ordering it
        o.stats.given_up = true
        o.head = o.n + 1
        wake_head(o)
      else
        -- a call that did not begin will not finish either: both go
        local h = o.head
        local fi = o.kind[h] == "begin" and o.finish_at[o.call[h]]
        if fi and not o.taken[fi] then
          o.taken[fi] = true
        end
        take(o, o.head)
      end
    end
  end
end

local guard_mt = { __close = function(g)
  local o, w = g.o, g.w
  o.nwaiting = o.nwaiting - 1
  -- nobody waits: the watchdog goes (it must not outlive the run)
  if o.nwaiting == 0 and o.watchdog and o.watchdog ~= loop.current() then
    local dog = o.watchdog
    o.watchdog = nil
    dog:cancel()
  end
  if w.key then
    local list = o.begin_waiters[w.key]
    for i, x in ipairs(list) do if x == w then table.remove(list, i) break end end
  else
    o.finish_waiters[w.call] = nil
  end
end }

-- Suspends the running task until woken (by take, or the watchdog).
local function wait(o, w)
  if w.key then
    local list = o.begin_waiters[w.key]
    if not list then
      list = {}
      o.begin_waiters[w.key] = list
    end
    list[#list + 1] = w
  else
    o.finish_waiters[w.call] = w
  end
  o.nwaiting = o.nwaiting + 1
  o.stats.waits = o.stats.waits + 1
  local _ <close> = setmetatable({ o = o, w = w }, guard_mt)
  if not o.watchdog then o.watchdog = spawn(watchdog, o) end
  loop.suspend()
end

--- A call with match key `key` begins: waits for its turn, then returns
-- the recorded call it is (an id), or nil when the log has no begin
-- left for this key (it goes on at once).
function Order:begin(key)
  if key == nil or (self.pending[key] or 0) <= 0 or self.stats.given_up then return nil end
  if not coroutine.isyieldable() then return nil end
  while true do
    skip_taken(self)
    local h = self.head
    if h > self.n then return nil end
    if self.kind[h] == "begin" and self.key[h] == key then
      take(self, h)
      return self.call[h]
    end
    if (self.pending[key] or 0) <= 0 then return nil end
    wait(self, { task = loop.current(), key = key })
  end
end

--- The recorded call `id` is about to deliver its result: waits for its
-- finish's turn, then takes it.
function Order:finish(id)
  local i = id and self.finish_at[id]
  if not i or self.taken[i] or self.stats.given_up then return end
  if not coroutine.isyieldable() then return self:finished(id) end
  while not self.taken[i] do
    skip_taken(self)
    if self.head == i then
      take(self, i)
      return
    end
    if self.head > self.n then return end
    wait(self, { task = loop.current(), call = id })
  end
end

--- The recorded call `id` finished where it could not wait: taken now.
function Order:finished(id)
  local i = id and self.finish_at[id]
  if i and not self.taken[i] then take(self, i) end
end

return M
