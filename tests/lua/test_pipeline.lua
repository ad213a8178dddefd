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
  T.eq(names, { "usage.check", "pricing", "pacing.settle", "calllog" })
  pipeline.use("budget")
  pipeline.use("metrics")
  pipeline.use("cache")
  T.eq(pipeline.order("before"), { "cache.lookup", "pacing", "budget.reserve" })
  T.eq(pipeline.order("finish"), { "usage.check", "pricing", "budget.settle", "pacing.settle",
                                    "cache.store", "calllog", "metrics" })
  T.eq(pipeline.order("after"), { "cache.audit" })
end)

T.test("every row of the stage table names a real function", function()
  local phases = { before = true, decided = true, send = true, finish = true, after = true }
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
  T.eq(text, "usage.check;usage.check,pricing,pacing.settle,calllog;cache.lookup,pacing,budget.reserve;"
    .. "usage.check,pricing,budget.settle,pacing.settle,cache.store,calllog,metrics")
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

T.test("main's features are rows too: requiring them installs nothing, using them does", function()
  -- a fresh process: loading the modules adds no stage
  local status, text, err = T.llmrun([[-e '
    local p = require "llm.pipeline"
    local function all() local t = {}
      for _, ph in ipairs { "before", "decided", "send", "finish", "after" } do
        t[#t + 1] = ph .. "=" .. table.concat(p.order(ph), ",") end
      return table.concat(t, " ") end
    local before = all()
    for _, m in ipairs { "llm.batch", "llm.batch_defer", "llm.record", "llm.replay",
                         "llm.experiment_workers", "llm.proxy", "llm.cache_redis", "llm.budget_redis" } do
      require(m)
    end
    io.write(before == all() and "same" or ("changed: " .. all()), ";")
    local m = llm.model { name = "gpt-4o-mini", provider = "sim", headers = { ["x-sim-profile"] = "zero" } }
    local path = os.tmpname() .. ".cassette"
    assert(llm.record.start(path))
    io.write(table.concat(p.order("before"), ","), "|", table.concat(p.order("send"), ","), "|",
             table.concat(p.order("finish"), ","), ";")
    assert(m:chat "hi")
    llm.record.stop()
    io.write(table.concat(p.order("before"), ","), "|", table.concat(p.order("send"), ","), "|",
             table.concat(p.order("finish"), ","), ";")
    assert(llm.replay.start(path, { replay = "instant" }))
    io.write(table.concat(p.order("before"), ","), "|", table.concat(p.order("decided"), ","), "|",
             table.concat(p.order("send"), ","), "|", table.concat(p.order("finish"), ","), ";")
    local r = assert(m:chat "hi")
    io.write(tostring(r.replayed), ";")
    llm.replay.stop()
    io.write(table.concat(p.order("send"), ","), ";")
    llm.batch(m, { "What is 2 + 2?" }, { quiet = true, store = false })
    io.write(table.concat(p.order("finish"), ","))
    os.remove(path)
  ']], { env = { LLMRUN_LOG = "0" } })
  T.eq(status, 0, err)
  T.eq(text, "same;"
    .. "record.begin,pacing|record.tap|usage.check,pricing,pacing.settle,calllog,record.write;"
    .. "pacing||usage.check,pricing,pacing.settle,calllog;"
    .. "replay.begin,pacing|replay.turn|replay.tap|usage.check,replay.mark,pricing,pacing.settle,calllog;"
    .. "true;;"
    .. "usage.check,pricing,batch.price,pacing.settle,calllog")
end)

T.test("a send tap sees the network table, the URL and the call; it may change the table", function()
  local seen = {}
  -- answers every attempt itself, so nothing goes out; retries without waiting
  local function tap(net, url, send, call)
    if not call or call.tag ~= "tapped" then return nil end
    seen.url, seen.method, seen.kind = url, net.method, call.kind
    local fast = {}
    for k, v in pairs(net) do fast[k] = v end
    fast.retry_scale = 0
    return function(kind, anet, aurl, body, key_line, n)
      seen.n = n
      seen.scale = anet.retry_scale
      seen.key = key_line
      if n < 2 then return { status = 503, headers = {}, body = "{}" } end
      return { status = 200, headers = {}, t_end = require("_llm.loop").now(),
               body = '{"choices":[{"message":{"role":"assistant","content":"from the tap"},'
                 .. '"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}' }
    end, fast
  end
  pipeline.add("send", tap, 50, "test.tap")
  local m = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = "http://127.0.0.1:9/v1",
                        api_key = false, retry_scale = 100 }
  local t0 = require("_llm.loop").now()
  local r, err = m:chat("hi", { tag = "tapped" })
  pipeline.remove(tap)
  T.ok(r, tostring(err))
  T.eq(r.text, "from the tap")
  T.eq(r.retries, 2)
  T.ok(require("_llm.loop").now() - t0 < 5, "the tap's retry_scale = 0 was used")
  T.eq({ seen.url, seen.method, seen.kind, seen.n, seen.scale },
       { "http://127.0.0.1:9/v1/chat/completions", "POST", "chat", 2, 0 })
  T.ok(seen.key:find("^Idempotency%-Key: "), seen.key)
  -- a tap that refuses fails the call unsent
  local function refuse() return nil, llm.error("replay", "no recording") end
  pipeline.add("send", refuse, 50, "test.refuse")
  local r2, err2 = m:chat("hi")
  pipeline.remove(refuse)
  T.eq(r2, nil)
  T.eq({ err2.kind, err2.retries }, { "replay", 0 })
end)

T.test("decided-stages see a call a before-stage decided, and only that", function()
  local saw = {}
  local function answer(call) if call.tag == "decide" then return response.new { text = "early" } end end
  local function decided(call, resp, err) saw[#saw + 1] = { call.tag, resp and resp.text, err } end
  calls.on_before(answer, 10)
  calls.on_decided(decided)
  local c1 = calls.begin(MODEL, "chat", {}, { tag = "decide" })
  local r = calls.before(c1)
  calls.finish(c1, r)
  local c2 = calls.begin(MODEL, "chat", {}, { tag = "other" })
  T.eq(calls.before(c2), nil)
  calls.finish(c2, response.new { text = "sent" })
  calls.off(answer) calls.off(decided)
  T.eq(saw, { { "decide", "early", nil } })
end)
