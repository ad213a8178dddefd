-- llm.pipeline: the stages of a call, their order, and where they are
-- installed (one table, not side effects of require).
local T = ...
local calls = require "llm.calls"
local pipeline = require "llm.pipeline"
local response = require "llm.response"

local MODEL = { name = "stand-in", provider = "test", simulated = true }

local function one_call()
  local c = calls.begin(MODEL, "chat", {}, {})
  return calls.finish(c, response.new { text = "ok" })
end

T.test("ties run in registration order, lower priorities first", function()
  local seen = {}
  local hooks = {}
  -- many equal priorities: an unstable sort would reorder some of them
  for i = 1, 40 do
    local prio = (i % 3 == 0) and 50 or 100
    hooks[i] = function() seen[#seen + 1] = i end
    calls.on_finish(hooks[i], prio)
  end
  one_call()
  for _, h in ipairs(hooks) do calls.off(h) end
  local want = {}
  for i = 1, 40 do if i % 3 == 0 then want[#want + 1] = i end end
  for i = 1, 40 do if i % 3 ~= 0 then want[#want + 1] = i end end
  T.eq(seen, want)
  seen = {}
  one_call()
  T.eq(seen, {}, "off removes them")
end)

T.test("before-stages: the first that answers decides; later ones do not run", function()
  local ran = {}
  local a = function() ran[#ran + 1] = "a" end
  local b = function() ran[#ran + 1] = "b" return response.new { text = "from b" } end
  local c = function() ran[#ran + 1] = "c" return response.new { text = "from c" } end
  calls.on_before(c, 60)
  calls.on_before(b, 60)
  calls.on_before(a, 10)
  local call = calls.begin(MODEL, "chat", {}, {})
  local r = calls.before(call)
  calls.finish(call, r)
  calls.off(a) calls.off(b) calls.off(c)
  T.eq(ran, { "a", "c" }, "c was registered first at 60")
  T.eq(r.text, "from c")
end)

T.test("requiring a module installs nothing; use() installs its group once, in table order", function()
  local before = #pipeline.lists.finish
  require "llm.pricing"
  require "llm.log"
  require "llm.metrics"
  T.eq(#pipeline.lists.finish, before, "require has no side effect on the stages")
  T.eq(pipeline.order("finish")[1], "usage.check", "the usage check is always first")
  pipeline.install()
  pipeline.install()
  local names = pipeline.order("finish")
  T.eq(names, { "usage.check", "pricing", "calllog" })
  pipeline.use("budget")
  pipeline.use("metrics")
  pipeline.use("cache")
  T.eq(pipeline.order("before"), { "cache.lookup", "budget.reserve" })
  T.eq(pipeline.order("finish"), { "usage.check", "pricing", "budget.settle", "cache.store",
                                    "calllog", "metrics" })
  T.eq(pipeline.order("after"), { "cache.audit" })
end)

T.test("every row of the stage table names a real function", function()
  local phases = { before = true, finish = true, after = true }
  for _, row in ipairs(pipeline.STAGES) do
    T.ok(phases[row[1]], row[3] .. ": a known phase")
    T.eq(type(row[2]), "number", row[3])
    T.eq(type(require(row[4])[row[5]]), "function", row[4] .. "." .. row[5])
  end
end)

T.test("a model installs the core stages; a budget, a tracker and a cache theirs", function()
  -- a fresh process: nothing but the always-on usage check before the first model
  local status, text, err = T.llmrun([[-e '
    local p = require "llm.pipeline"
    io.write(table.concat(p.order("finish"), ","), ";")
    llm.model { name = "x", provider = "openai", base_url = "http://127.0.0.1:9/v1", api_key = false }
    io.write(table.concat(p.order("finish"), ","), ";")
    llm.budget { usd = 1 }
    local t = llm.metrics.tracker("t", { tag = "x" })
    llm.model { name = "y", provider = "openai", base_url = "http://127.0.0.1:9/v1", api_key = false,
                cache = llm.cache.open { path = os.tmpname() } }
    io.write(table.concat(p.order("before"), ","), ";", table.concat(p.order("finish"), ","))
  ']])
  T.eq(status, 0, err)
  T.eq(text, "usage.check;usage.check,pricing,calllog;cache.lookup,budget.reserve;"
    .. "usage.check,pricing,budget.settle,cache.store,calllog,metrics")
end)

T.test("LLMRUN_PROFILE_STAGES=1 times every stage and llm.model's own parts", function()
  local status, _, err = T.llmrun([[-e '
    local m = llm.model { name = "gpt-4o-mini", provider = "sim", headers = { ["x-sim-profile"] = "zero" } }
    for i = 1, 3 do assert(m:chat("hi " .. i)) end
  ']], { env = { LLMRUN_PROFILE_STAGES = "1", LLMRUN_LOG = "0" } })
  T.eq(status, 0, err)
  T.ok(err:find("stage profile", 1, true), err)
  for _, stage in ipairs { "request", "encode", "send", "parse", "usage.check", "pricing", "calllog" } do
    T.ok(err:find("\n  " .. stage .. " +3 ", 1), stage .. " in\n" .. err)
  end
  -- off by default: no table
  local _, _, quiet = T.llmrun([[-e 'llm.model { name = "gpt-4o-mini", provider = "sim" }:chat "hi"']],
    { env = { LLMRUN_LOG = "0" } })
  T.ok(not quiet:find("stage profile", 1, true), quiet)
end)
