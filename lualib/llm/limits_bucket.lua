-- The two mechanisms of llm.limits, without any clock or task of their own
-- (every function takes `now`), so tests drive them with a fake clock:
--
--   Bucket: a rate limit of `limit` units per minute (requests, tokens,
--   input or output tokens) as a paced token bucket. It refills
--   continuously at limit/60 per second up to a small cap (the burst,
--   default 0.5% of the limit, at least 1); a request of cost c may go
--   when the level holds min(c, cap), and then takes all of c, so the
--   level may go below zero (a debt the refill pays back before anyone
--   else goes). A refund (the reservation was larger than the real usage)
--   puts units back, never above the cap.
--
--   Why not the provider's own bucket (capacity = the whole minute's
--   limit) or fixed one-minute windows: a window counter admits a full
--   limit just before its edge and another just after (2x in a second),
--   and a full-size bucket admits its whole capacity at once and then
--   the refill on top (2x in the first minute). Here no window edge
--   exists and the cap is small: over ANY interval of length W the units
--   admitted are at most cap + limit * W / 60 + (the one request that
--   went into debt, minus the cap), so every 60-second sliding window
--   stays within the limit plus the burst plus one request. Pacing from
--   an almost empty bucket costs nothing in throughput: the refill rate is
--   the limit itself.
--
--   Window: adaptive concurrency (AIMD). No bound until the provider
--   first says it is overloaded (429, 529, "overloaded"): then the bound
--   becomes half of the calls in flight; every success adds 1/bound (one
--   per bound's worth of successes), every overload halves it again, at
--   least 1 and at most max_concurrency when that is set (which is also
--   where it starts). An overload from a call that started before the
--   last decrease does not decrease it again: a burst of 429s from one
--   flight of calls is one signal, not twenty.
local M = {}

M.DEFAULT_BURST = 0.005

local Bucket = {}
Bucket.__index = Bucket

local function cap_of(limit, burst)
  return math.max(1, limit * burst)
end

--- M.bucket(limit_per_minute, burst_fraction, now) -> a bucket, full (its cap).
function M.bucket(limit, burst, now)
  burst = burst or M.DEFAULT_BURST
  local cap = cap_of(limit, burst)
  return setmetatable({ limit = limit, rate = limit / 60, burst = burst, cap = cap,
                        level = cap, t = now }, Bucket)
end

function Bucket:refill(now)
  local dt = now - self.t
  if dt > 0 then
    local lv = self.level + dt * self.rate
    self.level = lv < self.cap and lv or self.cap
    self.t = now
  end
end

--- Seconds until a request of this cost may go (0: now).
function Bucket:wait(cost, now)
  self:refill(now)
  local need = cost < self.cap and cost or self.cap
  if self.level >= need then return 0 end
  return (need - self.level) / self.rate
end

function Bucket:take(cost, now)
  self:refill(now)
  self.level = self.level - cost
end

--- Puts back units reserved and not used (never above the cap).
function Bucket:give(amount, now)
  if not (amount > 0) then return end
  self:refill(now)
  local lv = self.level + amount
  self.level = lv < self.cap and lv or self.cap
end

--- A new limit per minute (learned from the headers, or set again).
function Bucket:set_limit(limit, now)
  self:refill(now)
  self.limit, self.rate = limit, limit / 60
  self.cap = cap_of(limit, self.burst)
  if self.level > self.cap then self.level = self.cap end
end

--- The provider says only `remaining` units are left: never hold more
-- than that (its count includes what other clients of the key used).
function Bucket:correct(remaining, now)
  self:refill(now)
  if remaining < self.level then self.level = remaining end
end

-- ---- adaptive concurrency --------------------------------------------------------------

local Window = {}
Window.__index = Window

--- M.window(max_concurrency or nil) -> a window; w.limit is math.huge
-- while nothing bounds it.
function M.window(max)
  return setmetatable({ max = max, limit = max or math.huge, in_flight = 0,
                        decreased_at = -math.huge, decreases = 0 }, Window)
end

function Window:room()
  return self.in_flight < math.floor(self.limit)
end

function Window:success()
  if self.limit == math.huge then return end
  local l = self.limit + 1 / self.limit
  if self.max and l > self.max then l = self.max end
  self.limit = l
end

--- An overload signal from a call that started at t_start.
function Window:overload(t_start, now)
  if t_start and t_start < self.decreased_at then return false end
  local base = self.limit
  if base == math.huge or base > self.in_flight then base = math.max(self.in_flight, 1) end
  self.limit = math.max(1, base * 0.5)
  self.decreased_at = now
  self.decreases = self.decreases + 1
  return true
end

function Window:set_max(max)
  self.max = max
  if max and self.limit > max then self.limit = max end
  if max and self.decreases == 0 then self.limit = max end
  if not max and self.decreases == 0 then self.limit = math.huge end
end

M.Bucket, M.Window = Bucket, Window

return M
