-- Deferred calls: code that runs inside a collector makes ordinary m:chat
-- calls, and they go out together through llm.batch's machinery instead
-- of one by one. llm.experiment's batch variants run their cases this way
-- (all cases at once), so a variant written for the synchronous API is
-- measured on the Batch API unchanged.
--
--   local col = defer.collector(opts)          -- opts: llm.batch's options
--   col:run(fn, ...)      -- fn runs as one "participant" (e.g. one case);
--                         -- its m:chat calls (and its spawned tasks') are deferred
--   col:close()           -- after every participant returned
--   col:summary()         -- {batches = {...llm.batch summaries}, rounds = n}
--
-- How: the batch.defer before-stage (llm.pipeline, priority 200, after
-- the cache and the budget; installed by the first collector) takes a chat call whose task runs inside a collector, parks the
-- task, and returns the answer once it is known, so the rest of the call's
-- life (prices at batch rates, budget, cache store, call log, experiment
-- accounting) is the usual one. The collector's own task sends what is
-- parked when every participant still running is parked (nothing more can
-- come), or when nothing new arrived for idle_s seconds (a participant is
-- waiting on something else: a stream, an embedding, a sleep). A
-- participant that calls again after its answer joins the next round.
-- Requests are grouped by model (a batch has one model) and ordered by
-- case and request, so a rerun builds the same batches and resumes them.
local loop = require "_llm.loop"
local canon = require "_llm.canon"
local async = require "llm.async"
local context = require "llm.context"
local pipeline = require "llm.pipeline"
local errors = require "llm.errors"

local M = {}

M.IDLE_S = 0.5

local Collector = {}
Collector.__index = Collector

local function wake_watcher(self)
  if self.parked then
    self.parked = false
    loop.wake(self.watcher)
  end
end

-- Everything parked now goes out, one llm.batch send per model.
local function flush(self)
  local pending = self.pending
  self.pending = {}
  self.rounds = self.rounds + 1
  local groups, order = {}, {}
  for _, it in ipairs(pending) do
    local g = groups[it.call.model]
    if not g then
      g = {}
      groups[it.call.model] = g
      order[#order + 1] = it.call.model
    end
    it.key = tostring(it.call.case or "") .. "\0" .. (canon.encode(it.body) or "")
    g[#g + 1] = it
  end
  local batch = require "llm.batch"
  async.map(order, function(model)
    local g = groups[model]
    table.sort(g, function(a, b) return a.key < b.key end)
    for i, it in ipairs(g) do it.index = i end
    local ok, summary = pcall(batch.send, model, g, self.opts)
    local t_end = loop.now()
    for _, it in ipairs(g) do
      if not ok then
        it.err = errors.new("batch", "the batch could not be sent: " .. tostring(summary))
      elseif it.entry and not it.err then
        it.resp = batch.response_of(model, it, t_end)
      elseif not it.err then
        it.err = errors.new("batch", "no result for this request", { code = "missing" })
      end
    end
    if ok then for _, b in ipairs(summary) do self.batches[#self.batches + 1] = b end end
  end, { concurrency = math.max(#order, 1), progress = false })
  for _, it in ipairs(pending) do
    it.done = true
    if it.task then loop.wake(it.task) end
  end
end

local function watch(self)
  while not self.closed or #self.pending > 0 do
    local n = #self.pending
    if n == 0 then
      self.parked = true
      loop.suspend()
    elseif n >= self.active or loop.now() - self.last_arrival >= self.idle_s then
      flush(self)
    else
      loop.sleep(math.min(0.01, self.idle_s))
    end
  end
end

--- A collector; its watcher task is a child of the caller's task. opts:
-- llm.batch's options, plus idle_s (default 0.5).
function M.collector(opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  local idle = o.idle_s or M.IDLE_S
  if type(idle) ~= "number" or idle <= 0 then error("batch options: idle_s must be a number > 0", 2) end
  o.idle_s = nil
  require("llm.batch").check_opts(o, "batch options", 3)
  pipeline.use("batch_defer")
  local self = setmetatable({
    opts = o, pending = {}, active = 0, rounds = 0, batches = {},
    last_arrival = loop.now(), idle_s = idle,
  }, Collector)
  self.watcher = context.spawn(watch, self) -- it keeps the variant's context
  return self
end

local leave_mt = {
  __close = function(g)
    local self = g.c
    self.active = self.active - 1
    wake_watcher(self)
  end,
}

--- Runs fn(...) as one participant; its chat calls are deferred.
function Collector:run(fn, ...)
  self.active = self.active + 1
  local _ <close> = setmetatable({ c = self }, leave_mt)
  return context.with({ _batch = self }, fn, ...)
end

-- Parked items whose task went away (cancelled) leave the queue.
local unpark_mt = {
  __close = function(g)
    local it, self = g.it, g.c
    if it.done then return end
    for i, p in ipairs(self.pending) do
      if p == it then table.remove(self.pending, i) break end
    end
    it.task = nil
  end,
}

--- The before hook's work: parks the call until its batch answers.
function Collector:defer(call)
  call.batch = true
  call.kind = "batch"
  local it = { call = call, body = call.body, task = loop.current() }
  self.pending[#self.pending + 1] = it
  self.last_arrival = loop.now()
  wake_watcher(self)
  local _ <close> = setmetatable({ it = it, c = self }, unpark_mt)
  while not it.done do loop.suspend() end
  if it.resp then return it.resp end
  return nil, it.err
end

function Collector:close()
  self.closed = true
  wake_watcher(self)
  self.watcher:wait()
end

function Collector:summary()
  return { batches = self.batches, rounds = self.rounds }
end

--- batch.defer, a before-stage: a chat call made inside a collector waits
-- for its batch's answer.
function M.defer_stage(call)
  if call.kind ~= "chat" or call.batch then return nil end
  local ctx = call.context
  local col = ctx and ctx._batch
  if not col then return nil end
  return col:defer(call)
end

return M
