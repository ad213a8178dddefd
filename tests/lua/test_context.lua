-- llm.context: task-local values, inherited by spawned tasks, read by
-- llm.calls as the default tag and case of a call.
local T = ...
local calls = require "llm.calls"
local response = require "llm.response"

local MODEL = { name = "stand-in", provider = "test", simulated = true }

-- Records the tag and case of every call that finishes while fn runs.
local function record(fn)
  local seen = {}
  local hook = function(call) seen[#seen + 1] = { tag = call.tag, case = call.case } end
  calls.on_finish(hook)
  local ok, err = pcall(fn)
  calls.off(hook)
  if not ok then error(err, 0) end
  return seen
end

local function call(opts)
  local c = calls.begin(MODEL, "chat", {}, opts or {})
  return calls.finish(c, response.new { text = "ok" })
end

T.test("with sets values for its extent and restores them, also on error", function()
  T.eq(llm.context.current(), nil)
  local inner
  llm.context.with({ tag = "a" }, function()
    T.eq(llm.context.get("tag"), "a")
    llm.context.with({ case = 3 }, function()
      inner = { llm.context.get("tag"), llm.context.get("case") }
    end)
    T.eq(llm.context.get("case"), nil, "the inner value is gone")
  end)
  T.eq(inner, { "a", 3 }, "nested contexts layer")
  T.eq(llm.context.get("tag"), nil)
  T.err(function() llm.context.with({ tag = "b" }, function() error("boom") end) end, "boom")
  T.eq(llm.context.get("tag"), nil, "restored after an error")
  T.err(function() llm.context.with("x", print) end, "table expected")
  T.err(function() llm.context.with({}, 5) end, "function expected")
end)

T.test("calls take the tag and case from the context unless opts name them", function()
  local seen = record(function()
    call()
    llm.context.with({ tag = "v1", case = "c9" }, function()
      call()
      call { tag = "explicit" }
      call { case = "own" }
    end)
  end)
  T.eq(seen, {
    { tag = nil, case = nil },
    { tag = "v1", case = "c9" },
    { tag = "explicit", case = "c9" },
    { tag = "v1", case = "own" },
  })
end)

T.test("spawned tasks (llm.map, llm.spawn) inherit the context at spawn time", function()
  local seen = record(function()
    llm.context.with({ tag = "par" }, function()
      llm.map({ 1, 2, 3 }, function(i)
        llm.sleep(0.001 * i)
        call { case = i }
      end, { concurrency = 3 })
      local t = llm.spawn(function() llm.sleep(0.002) call { case = "bg" } end)
      t:wait()
    end)
    -- a task spawned outside any context has none
    llm.spawn(function() call { case = "plain" } end):wait()
  end)
  local tags = {}
  for _, s in ipairs(seen) do tags[tostring(s.case)] = s.tag or "none" end
  T.eq(tags, { ["1"] = "par", ["2"] = "par", ["3"] = "par", bg = "par", plain = "none" })
end)

T.test("a child keeps its context after the parent's with ends; siblings stay apart", function()
  local got = {}
  local child
  llm.context.with({ tag = "early" }, function()
    child = llm.spawn(function()
      llm.sleep(0.01)
      got.child = llm.context.get("tag")
    end)
  end)
  llm.parallel {
    function() llm.context.with({ tag = "x" }, function() llm.sleep(0.005) got.x = llm.context.get("tag") end) end,
    function() llm.context.with({ tag = "y" }, function() llm.sleep(0.002) got.y = llm.context.get("tag") end) end,
  }
  child:wait()
  T.eq(got, { child = "early", x = "x", y = "y" })
  T.eq(llm.context.get("tag"), nil)
end)

T.test("spawn errors and results are unchanged by the wrapper", function()
  llm.context.with({ tag = "t" }, function()
    T.err(function() llm.spawn(42) end, "function expected")
    local t = llm.spawn(function(a, b) return a + b end, 2, 3)
    T.eq({ t:wait() }, { true, 5 })
  end)
end)
