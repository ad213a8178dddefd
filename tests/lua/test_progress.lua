-- The llm.map progress line: its text, throttling, the costs and hits it
-- takes from the call hooks, and when it is drawn at all. (Drawing on a
-- real terminal is checked by tests/cli/test_logs_report.sh under `script`.)
local T = ...
local progress = require "llm.progress"
local calls = require "llm.calls"
local response = require "llm.response"

local M = { name = "m", provider = "sim", simulated = true }

local function finish_call(cost, hit)
  local c = calls.begin(M, "chat", {}, {})
  calls.finish(c, response.new { text = "x", cost = cost, cached = hit or false })
end

T.test("the line", function()
  local full = ("█"):rep(20)
  T.eq(progress.line(10, 10, 4, 0, 0, 0), full .. "  10/10  2.5/s")
  local half = ("█"):rep(10) .. (" "):rep(10)
  T.eq(progress.line(5, 10, 2, 0.0123, 4, 1), half .. "  5/10  2.5/s  ETA 2s  $0.0123  hits 25%")
  T.eq(progress.line(0, 10, 0, 0, 0, 0), (" "):rep(20) .. "  0/10")
  T.eq(progress.line(1, 1000, 10, 2.5, 0, 0):match("ETA (%S+)"), "2h46m")
  T.eq(progress.line(3, 24, 1, 0, 0, 0):match("^(.-)  3/24"), "██▌" .. (" "):rep(17))
end)

T.test("updates, throttling, call costs and hits, finish", function()
  local out, t = {}, 100
  local p = progress.new(10, { write = function(s) out[#out + 1] = s end, now = function() return t end })
  finish_call(0.01)
  finish_call(0.02)
  finish_call(0.5, "exact") -- a hit: counted as a hit, costs nothing
  p.update(1, 10)
  T.eq(#out, 1)
  T.ok(out[1]:find("^\r"))
  T.ok(out[1]:find("1/10", 1, true))
  T.ok(out[1]:find("$0.0300", 1, true), out[1])
  T.ok(out[1]:find("hits 33%", 1, true), out[1])
  t = t + 0.05
  p.update(2, 10)
  T.eq(#out, 1, "no redraw within 0.1 s")
  t = t + 0.1
  p.update(3, 10)
  T.eq(#out, 2)
  p.update(10, 10) -- the last item always draws
  T.eq(#out, 3)
  p:finish()
  T.eq(out[#out], "\n")
  local n = #out
  finish_call(1)
  p:finish()
  T.eq(#out, n, "finish is idempotent and unhooks")
end)

T.test("not drawn: few items, not a terminal, NO_COLOR, nested", function()
  T.eq(progress.wanted(3), false)
  -- tests run with stderr redirected and NO_COLOR=1
  T.eq(progress.wanted(100), false)
  T.eq(progress.auto(100), nil)
  local p = progress.new(5, { write = function() end })
  T.eq(progress.wanted(100), false, "one line at a time")
  p:finish()
end)

T.test("llm.map still calls on_progress, and progress=false is accepted", function()
  local seen = {}
  local items = {}
  for i = 1, 10 do items[i] = i end
  local r = llm.map(items, function(i) return i * 2 end, { on_progress = function(d, n) seen[#seen + 1] = d .. "/" .. n end })
  T.eq(r[10], 20)
  T.eq(#seen, 10)
  T.eq(seen[10], "10/10")
  T.eq(llm.map(items, function(i) return i end, { progress = false })[3], 3)
end)
