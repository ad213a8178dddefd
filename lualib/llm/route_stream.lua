-- Stream objects for routers (llm.route): they behave like llm.model's
-- streams (s:next() -> delta | nil, raising an llm.error on failure;
-- s:result() -> response | nil, err; s:close(); usable as
-- `for delta in router:stream(req)`), but may switch to another model
-- before the first delta (fallbacks) or replay an answer already made
-- (a cascade's accepted cheap answer).
local errors = require "llm.errors"
local loop = require "_llm.loop"
local streams = require "llm.streams"

local M = {}

-- ---- switching: try streams in order until one starts ------------------------------

local Switching = {}
Switching.__index = Switching
Switching.__name = "llm.route.stream"

--- switching{open=, moves_on=, finish=, failed=} -> stream
--   open(i) -> stream, name | nil when there is no i-th model
--   moves_on(err) -> whether to try the next model after err
--   finish(resp, i, errs) -> the response to give (annotated)
--   failed(err, errs) (optional): told once when the stream fails
-- Errors before the first delta go to the next model when moves_on says
-- so; after it, the caller gets them (the text so far is theirs).
function M.switching(spec)
  return setmetatable({ spec = spec, i = 1, errs = {}, emitted = false }, Switching)
end

function Switching:_fail(err)
  self.failed = err
  if self.spec.failed then self.spec.failed(err, self.errs) end
end

function Switching:next()
  if self.done then return nil end
  if self.failed then error(self.failed, 2) end
  while true do
    if not self.inner then
      local s, name = self.spec.open(self.i)
      if not s then
        self:_fail(self.last_err or errors.new("route", "no model to stream from"))
        error(self.failed, 2)
      end
      self.inner, self.name = s, name
    end
    local ok, d = pcall(self.inner.next, self.inner)
    if ok then
      if d ~= nil then
        self.emitted = true
        return d
      end
      local resp, err = self.inner:result()
      if not resp then
        self:_fail(err or errors.new("route", "the stream ended without a response"))
        error(self.failed, 2)
      end
      self.response = self.spec.finish(resp, self.i, self.errs)
      self.done = true
      return nil
    end
    local err = d
    if not errors.is(err) then error(err, 0) end -- misuse: not ours to handle
    self.errs[#self.errs + 1] = { model = self.name, error = err }
    self.last_err = err
    pcall(self.inner.close, self.inner)
    self.inner = nil
    if self.emitted or not self.spec.moves_on(err) then
      self:_fail(err)
      error(err, 2)
    end
    self.i = self.i + 1
  end
end

Switching.result = streams.result

function Switching:close()
  if self.inner then pcall(self.inner.close, self.inner) end
  if not self.done and not self.failed then
    self.failed = errors.new("cancelled", "stream closed before its end")
  end
end

Switching.__call = Switching.next
Switching.__close = Switching.close

--- failed(err) -> a stream that fails with err at its first next().
function M.failed(err)
  local s = M.switching {
    open = function() return nil end, moves_on = function() return false end,
    finish = function(r) return r end,
  }
  s.last_err = err
  return s
end

-- ---- replay: an answer already made, as a stream of one delta ------------------------------

local Replay = {}
Replay.__index = Replay
Replay.__name = "llm.route.stream"

--- replay(resp) -> a stream yielding resp.text as one delta, then resp.
function M.replay(resp)
  return setmetatable({ response = resp, sent = false }, Replay)
end

function Replay:next()
  if self.sent or self.closed then return nil end
  self.sent = true
  if (self.response.text or "") == "" then return nil end
  return { text = self.response.text, index = 0, t = loop.now() }
end

function Replay:result() return self.response end
function Replay:close() self.closed = true end
Replay.__call = Replay.next
Replay.__close = Replay.close

-- ---- delivering -------------------------------------------------------------------------------

--- deliver(s, on_delta): as llm.model's m:stream (llm.streams.deliver).
M.deliver = streams.deliver

return M
