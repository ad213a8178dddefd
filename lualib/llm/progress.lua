-- The progress line llm.map draws on stderr:
--   ███████▌            37/120  4.1/s  ETA 20s  $0.0123  hits 25%
-- done/total, items per second, time left, cost so far and cache hit rate
-- of the model calls finished meanwhile (the progress stage of llm.pipeline),
-- and what the pacer does (llm.limits: the concurrency bound, "waiting for
-- TPM"). Only
-- on a terminal that wants it: stderr a TTY, NO_COLOR unset or empty
-- (https://no-color.org/), TERM not "dumb"; only for more than a few
-- items; one line at a time (a map inside a map draws nothing). Redrawn at
-- most ten times a second; the last state stays on screen.
local host = require "_llm.host"
local loop = require "_llm.loop"
local pipeline = require "llm.pipeline"

local M = {}

M.MIN_ITEMS = 6       -- fewer items finish before a bar would help
M.INTERVAL = 0.1      -- seconds between redraws

local showing = nil   -- the progress line on screen, if any
local counting = {}   -- progress objects not finished yet: they count calls

--- The progress stage (llm.pipeline): every unfinished progress object
-- counts the call, its cost and whether it was a cache hit.
function M.progress_stage(_, resp, _, partial)
  local r = resp or partial
  for i = 1, #counting do
    local p = counting[i]
    p.calls = p.calls + 1
    if r and r.cached then p.hits = p.hits + 1
    elseif r and type(r.cost) == "number" then p.cost = p.cost + r.cost end
  end
end

--- Whether a progress line should be drawn for total items.
function M.wanted(total)
  if total < M.MIN_ITEMS or showing then return false end
  local nc = os.getenv("NO_COLOR")
  if nc ~= nil and nc ~= "" then return false end
  if os.getenv("TERM") == "dumb" then return false end
  return host.isatty("stderr")
end

local Progress = {}
Progress.__index = Progress

local EIGHTHS = { "▏", "▎", "▍", "▌", "▋", "▊", "▉" }
local CELLS = 20

local function bar(done, total)
  local eighths = math.floor(done / total * CELLS * 8)
  local s = ("█"):rep(eighths // 8)
  if eighths % 8 > 0 then s = s .. EIGHTHS[eighths % 8] end
  return s .. (" "):rep(CELLS - utf8.len(s))
end

local function duration(s)
  if s < 60 then return ("%.0fs"):format(s) end
  if s < 3600 then return ("%dm%02ds"):format(s // 60, math.floor(s % 60)) end
  return ("%dh%02dm"):format(s // 3600, math.floor(s % 3600) // 60)
end

-- What the pacer says (llm.limits: "conc 12  waiting for TPM"), when it
-- is loaded; nil otherwise.
local function pacing_text()
  local limits = package.loaded["llm.limits"]
  return limits and limits.progress_text() or nil
end

--- The line for a state (exposed for tests); pacing: the pacer's words
-- (default: llm.limits.progress_text()).
function M.line(done, total, elapsed, cost, calls_n, hits, pacing)
  local parts = { bar(done, total), ("%d/%d"):format(done, total) }
  if elapsed > 0 and done > 0 then
    local rate = done / elapsed
    parts[#parts + 1] = rate >= 10 and ("%.0f/s"):format(rate) or ("%.1f/s"):format(rate)
    if done < total then parts[#parts + 1] = "ETA " .. duration((total - done) / rate) end
  end
  if cost and cost > 0 then
    parts[#parts + 1] = cost >= 1 and ("$%.2f"):format(cost) or ("$%.4f"):format(cost)
  end
  if calls_n > 0 and hits > 0 then
    parts[#parts + 1] = ("hits %.0f%%"):format(hits / calls_n * 100)
  end
  if pacing == nil then pacing = pacing_text() end
  if pacing then parts[#parts + 1] = pacing end
  return table.concat(parts, "  ")
end

--- M.new(total [, {write=fn, now=fn}]) -> progress: p.update(done, total)
-- and p:finish() (also its __close). Starts counting call costs and hits.
function M.new(total, opts)
  opts = opts or {}
  local p = setmetatable({
    total = total, done = 0, cost = 0, calls = 0, hits = 0, last = -math.huge,
    now = opts.now or loop.now,
    write = opts.write or function(s) io.stderr:write(s) io.stderr:flush() end,
  }, Progress)
  p.t0 = p.now()
  counting[#counting + 1] = p
  pipeline.use("progress")
  p.update = function(done, tot)
    p.done, p.total = done, tot or p.total
    local t = p.now()
    if done < p.total and t - p.last < M.INTERVAL then return end
    p.last = t
    p.drawn = done
    p.write("\r" .. M.line(done, p.total, t - p.t0, p.cost, p.calls, p.hits) .. "\27[K")
  end
  showing = p
  return p
end

function Progress:finish()
  if self.finished then return end
  self.finished = true
  for i = #counting, 1, -1 do
    if counting[i] == self then table.remove(counting, i) end
  end
  if showing == self then showing = nil end
  if self.drawn then
    if self.drawn ~= self.done then -- the last update fell between redraws
      self.write("\r" .. M.line(self.done, self.total, self.now() - self.t0, self.cost, self.calls, self.hits) .. "\27[K")
    end
    self.write("\n")
  end
end
Progress.__close = Progress.finish

--- For llm.map: a progress object when one should be drawn, else nil.
function M.auto(total)
  if not M.wanted(total) then return nil end
  return M.new(total)
end

return M
