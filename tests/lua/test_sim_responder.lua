-- llm.sim.responder(fn): a Lua function scripts the simulator's answers,
-- and the answers still travel the real wire (streamed with the latency
-- profile, usage counted, cut by max_tokens, priced, r.sim_skill "mock");
-- nil falls through to the simulator's own skills; per-case answers in an
-- experiment; a scripted tool call in a two-turn loop; a scripted 429
-- retried by the client; errors inside fn; removal; Claude models through
-- /v1/messages; the cache and embeddings.
local T = ...
local cjson = require "cjson"

local function model(name, headers)
  return llm.model { name = name, provider = "sim", retry_scale = 0.01,
                     headers = headers or { ["x-sim-profile"] = "zero" } }
end

-- Runs fn with responder r registered, removed afterwards whatever happens.
local function with_responder(r, fn)
  llm.sim.responder(r)
  local ok, err = pcall(fn)
  llm.sim.responder(nil)
  if not ok then error(err, 0) end
end

T.test("a string answer is streamed by the simulator: TTFT, usage and price are the simulator's", function()
  local seen = {}
  local answer = "Scripted: the quick brown fox jumps over the lazy dog, twice over."
  -- a real latency: 150 ms to the first token, then 400 tokens/s
  local m = model("gpt-4o-mini", { ["x-sim-ttft-ms"] = "150", ["x-sim-tokens-per-s"] = "400" })
  with_responder(function(req)
    seen[#seen + 1] = req
    return answer
  end, function()
    local deltas = {}
    local r = assert(m:stream({ system = "Be brief.", user = "Tell me a story." },
      { tag = "story", on_delta = function(d) deltas[#deltas + 1] = d.text end }))
    T.eq(r.text, answer)
    T.eq(table.concat(deltas), answer)
    T.ok(#deltas > 5, "streamed in pieces, not one block: " .. #deltas)
    T.eq(r.sim_skill, "mock")
    T.eq(r.usage.completion_tokens, llm.tokens.count(answer))
    T.ok(r.usage.prompt_tokens > 0)
    T.ok(r.ttft_ms >= 120, "TTFT from the simulator's profile: " .. tostring(r.ttft_ms))
    T.ok(r.latency_ms > r.ttft_ms, "the tokens took time after the first")
    T.ok(type(r.cost) == "number" and r.cost > 0, "priced like any answer")
  end)
  T.eq(#seen, 1, "called once per call")
  local req = seen[1]
  T.eq(req.model, "gpt-4o-mini")
  T.eq(req.provider, "sim")
  T.eq(req.kind, "stream")
  T.eq(req.system, "Be brief.")
  T.eq(req.user, "Tell me a story.")
  T.eq(req.tag, "story")
  T.eq(req.options.tag, "story")
  T.eq(#req.messages, 2)
  T.eq(req.messages[2], { role = "user", content = "Tell me a story." })
end)

T.test("the scripted text is cut by max_tokens and stop as any answer", function()
  local m = model "gpt-4o"
  with_responder(function() return "one two three four five six seven eight nine ten" end, function()
    local r = assert(m:chat { user = "count", max_tokens = 3 })
    T.eq(r.finish_reason, "length")
    T.eq(r.usage.completion_tokens, 3)
    T.eq(r.text, "one two three")
    r = assert(m:chat { user = "count", stop = { " four" } })
    T.eq(r.text, "one two three")
    T.eq(r.finish_reason, "stop")
  end)
end)

T.test("nil falls through to the simulator's own skills", function()
  local m = model "gpt-4o"
  local calls = 0
  with_responder(function(req)
    calls = calls + 1
    if req.user:find("scripted", 1, true) then return "from the script" end
    return nil
  end, function()
    local r = assert(m:chat "What is 17 + 25?")
    T.eq(r.sim_skill, "arithmetic")
    T.ok(r.text:find("42", 1, true), r.text)
    local f = assert(m:chat "Write a few words about clouds.")
    T.eq(f.sim_skill, "filler")
    T.eq(assert(m:chat "a scripted one").text, "from the script")
  end)
  T.eq(calls, 3)
end)

T.test("per-case answers inside llm.experiment: the responder sees the case id and variant tag", function()
  local cases = {}
  for i = 1, 6 do cases[i] = { id = "q" .. i, question = "Question number " .. i, expected = "yes" } end
  local m = model "gpt-4o-mini"
  local seen = {}
  local cmp
  with_responder(function(req)
    seen[#seen + 1] = req.tag .. "/" .. tostring(req.case)
    -- "careful" answers every case right; "sloppy" misses the odd ones
    if req.tag == "sloppy" and tonumber(req.case:match("%d+")) % 2 == 1 then return "no" end
    return "yes"
  end, function()
    cmp = llm.experiment { cases = cases, progress = false, check = llm.check.equals(),
      variants = {
        careful = function(c) return m:chat(c.question) end,
        sloppy = function(c) return m:chat(c.question) end,
      } }
  end)
  T.eq(#seen, 12)
  local has = {}
  for _, s in ipairs(seen) do has[s] = true end
  T.ok(has["careful/q1"] and has["sloppy/q6"], table.concat(seen, " "))
  local rows = cmp:cases()
  local pass = { careful = 0, sloppy = 0 }
  for _, row in ipairs(rows) do
    for name, v in pairs(row.variants) do
      if v.pass then pass[name] = pass[name] + 1 end
    end
  end
  T.eq(pass, { careful = 6, sloppy = 3 })
  T.ok(not cmp:text():find("filler", 1, true), "scripted answers are not filler")
end)

local tools = { { type = "function", ["function"] = {
  name = "get_weather", description = "The weather in a city",
  parameters = { type = "object", required = { "city" },
                 properties = { city = { type = "string" } } } } } }

-- The agent loop a user would test: call the model; run the tools it asks
-- for; send the results; stop at an answer.
local function agent(m, question)
  local messages = { { role = "user", content = question } }
  local turns = {}
  for _ = 1, 4 do
    local r = assert(m:chat { messages = messages, tools = tools })
    turns[#turns + 1] = r
    if r.finish_reason ~= "tool_calls" then return r, messages, turns end
    messages[#messages + 1] = { role = "assistant", content = r.text ~= "" and r.text or nil,
                                tool_calls = r.tool_calls }
    for _, c in ipairs(r.tool_calls) do
      local args = cjson.decode(c["function"].arguments)
      messages[#messages + 1] = { role = "tool", tool_call_id = c.id,
                                  content = cjson.encode { city = args.city, temp_c = 21 } }
    end
  end
  error("the loop did not end")
end

-- The responder playing the model: a tool call first, then an answer from
-- the tool's result.
local function weather_script(req)
  local last = req.messages[#req.messages]
  if last.role == "tool" then
    local result = cjson.decode(last.content)
    return ("It is %d degrees in %s."):format(result.temp_c, result.city)
  end
  return { tool_calls = { { name = "get_weather", arguments = { city = "Lyon" } } } }
end

T.test("a scripted tool call, then an answer from the tool's result (a two-turn loop)", function()
  with_responder(weather_script, function()
    -- nothing in the question matches the tool: the call is the script's
    local r, messages, turns = agent(model "gpt-4o-mini", "Anything new today?")
    T.eq(r.text, "It is 21 degrees in Lyon.")
    T.eq(#turns, 2)
    T.eq(turns[1].sim_skill, "mock")
    T.eq(r.sim_skill, "mock")
    T.eq(#messages, 3)
    local call = messages[2].tool_calls[1]
    T.eq(call["function"].name, "get_weather")
    T.eq(cjson.decode(call["function"].arguments), { city = "Lyon" })
    T.ok(type(call.id) == "string" and call.id ~= "")
    -- the call's tokens count as completion tokens; streamed, the same call
    local s = assert(model("gpt-4o-mini"):stream({ messages = { messages[1] }, tools = tools },
      { on_delta = function() end }))
    T.eq(s.finish_reason, "tool_calls")
    T.eq(s.tool_calls[1]["function"].name, "get_weather")
    T.eq(cjson.decode(s.tool_calls[1]["function"].arguments), { city = "Lyon" })
    T.ok(s.usage.completion_tokens > 0)
  end)
  -- arguments as JSON text, and several calls at once, in order
  with_responder(function()
    return { content = "Checking both.", tool_calls = {
      { name = "get_weather", arguments = '{"city": "Oslo"}' },
      { ["function"] = { name = "get_weather", arguments = { city = "Rome" } } } } }
  end, function()
    local r = assert(model("gpt-4o"):chat { user = "Oslo and Rome?", tools = tools })
    T.eq(r.finish_reason, "tool_calls")
    T.eq(#r.tool_calls, 2)
    T.eq(cjson.decode(r.tool_calls[1]["function"].arguments), { city = "Oslo" })
    T.eq(cjson.decode(r.tool_calls[2]["function"].arguments), { city = "Rome" })
  end)
end)

T.test("a scripted 429 is retried by the client; retries and errors are counted", function()
  local m = model "gpt-4o-mini"
  local before = llm.sim.stats()
  with_responder(function()
    return { content = "after a retry", error = { status = 429, attempts = 1, retry_after = 0.05 } }
  end, function()
    local r = assert(m:chat "hi")
    T.eq(r.text, "after a retry")
    T.eq(r.retries, 1)
    T.eq(r.sim_skill, "mock")
  end)
  local after = llm.sim.stats()
  T.eq(after.requests - before.requests, 2, "two attempts reached the simulator")
  -- every attempt fails: the client gives up after max_retries, with the
  -- scripted message; a 500 too
  with_responder(function(req)
    if req.user == "500" then return { error = { status = 500 } } end
    return { error = { status = 429, message = "Slow down, scripted." } }
  end, function()
    local r, err = m:with { max_retries = 2 }:chat "hi"
    T.eq(r, nil)
    T.eq(err.status, 429)
    T.eq(err.retries, 2)
    T.ok(err.message:find("Slow down, scripted.", 1, true), err.message)
    r, err = m:with { max_retries = 1 }:chat "500"
    T.eq(r, nil)
    T.eq(err.status, 500)
    T.eq(err.retries, 1)
  end)
  T.eq(llm.sim.stats().requests - after.requests, 5)
end)

T.test("an error inside fn raises from the call; a wrong answer shape raises", function()
  local m = model "gpt-4o-mini"
  with_responder(function() error("the script broke") end, function()
    T.err(function() m:chat "hi" end, "the script broke")
    T.err(function() m:stream("hi", { on_delta = function() end }) end, "the script broke")
  end)
  with_responder(function() return 42 end, function()
    T.err(function() m:chat "hi" end, "llm.sim.responder: the responder must return nil, a string or a table")
  end)
  with_responder(function() return { text = "x" } end, function()
    T.err(function() m:chat "hi" end, "unknown answer field 'text'")
  end)
  with_responder(function() return { tool_calls = { { name = "f", arguments = { 1, 2 } } } } end, function()
    T.err(function() m:chat "hi" end, "arguments must be an object")
  end)
  with_responder(function() return { error = { status = 200 } } end, function()
    T.err(function() m:chat "hi" end, "error.status must be an HTTP error status")
  end)
  T.err(function() llm.sim.responder("not a function") end, "function or nil expected")
  -- the next call, without a responder, is fine
  T.ok(assert(m:chat "hi").text ~= "")
end)

T.test("the responder may wait (llm.sleep) in the calling task; calls run concurrently", function()
  local m = model "gpt-4o-mini"
  with_responder(function(req)
    llm.sleep(0.1)
    return "slept on " .. req.user
  end, function()
    local t0 = llm.now()
    local rs = llm.map({ "a", "b", "c", "d" }, function(q) return assert(m:chat(q)).text end)
    local took = llm.now() - t0
    T.eq(rs, { "slept on a", "slept on b", "slept on c", "slept on d" })
    T.ok(took < 0.35, "the four sleeps overlapped: " .. took)
  end)
end)

T.test("removed: llm.sim.responder(nil); llm.sim.responder() returns the current one", function()
  local m = model "gpt-4o-mini"
  local function fn() return "scripted" end
  local function other() return "other" end
  T.eq(llm.sim.responder(), nil)
  T.eq(llm.sim.responder(fn), nil)
  T.eq(llm.sim.responder(), fn)
  T.eq(assert(m:chat "hi").text, "scripted")
  T.eq(llm.sim.responder(other), fn, "setting returns the previous one")
  T.eq(assert(m:chat "hi").text, "other")
  T.eq(llm.sim.responder(nil), other)
  T.eq(llm.sim.responder(), nil)
  local r = assert(m:chat "hi")
  T.ok(r.text ~= "other" and r.sim_skill ~= "mock", r.text)
  local order = table.concat(require("llm.pipeline").order("before"), ",")
  T.ok(not order:find("sim.responder", 1, true), "the stage is out again: " .. order)
end)

T.test("a Claude model on the simulator: the answer and tool calls go through /v1/messages", function()
  local m = model "claude-haiku-4-5"
  local before = llm.sim.stats()
  with_responder(weather_script, function()
    local r, messages, turns = agent(m, "Anything new today?")
    T.eq(r.text, "It is 21 degrees in Lyon.")
    T.eq(#turns, 2)
    T.eq(turns[1].sim_skill, "mock")
    T.eq(r.sim_skill, "mock")
    local call = messages[2].tool_calls[1]
    T.eq(call["function"].name, "get_weather")
    T.eq(cjson.decode(call["function"].arguments), { city = "Lyon" })
    T.ok(call.id:find("^toolu_"), call.id)
  end)
  with_responder(function(req)
    T.eq(req.model, "claude-haiku-4-5")
    return { content = "Claude, scripted, after one 529.", error = { status = 529, attempts = 1 } }
  end, function()
    local r = assert(m:stream({ user = "hi", max_tokens = 50 }, { on_delta = function() end }))
    T.eq(r.text, "Claude, scripted, after one 529.")
    T.eq(r.retries, 1)
    T.eq(r.usage.completion_tokens, llm.tokens.count("Claude, scripted, after one 529."))
  end)
  local after = llm.sim.stats()
  T.eq(after.messages - before.messages, 4, "two loop turns and two attempts on /v1/messages")
  T.eq(after.chat - before.chat, 0)
end)

T.test("a cache hit skips the responder; embeddings and other providers never see it", function()
  local path = T.tmpdb()
  local c = assert(llm.cache.open { path = path })
  local m = model("gpt-4o-mini"):with_cache(c)
  local calls = 0
  with_responder(function(req)
    calls = calls + 1
    return "cached script for " .. req.user
  end, function()
    local a = assert(m:chat { user = "q", temperature = 0 })
    local b = assert(m:chat { user = "q", temperature = 0 })
    T.eq(a.text, "cached script for q")
    T.eq(b.text, a.text)
    T.ok(b.cached, "the second is a hit")
    T.eq(calls, 1, "the hit did not ask the responder")
    local e = assert(model("text-embedding-3-small"):embed "hello")
    T.eq(#e.vectors, 1)
    T.eq(calls, 1, "embeddings are not scripted")
  end)
  c:close()
  T.remove_db(path)
end)

T.test("the simulator refuses a malformed mock_tool_calls on both wires (400)", function()
  for _, name in ipairs { "gpt-4o-mini", "claude-haiku-4-5" } do
    local m = llm.model { name = name, provider = "sim", max_retries = 0,
                          headers = { ["x-sim-profile"] = "zero" } }
    for _, bad in ipairs { "nope", {}, { { name = "" } }, { { name = "f", arguments = "[1]" } } } do
      local r, err = m:chat { user = "hi", max_tokens = 20, extra = { mock_tool_calls = bad } }
      T.eq(r, nil, name)
      T.eq(err.status, 400, name)
      T.ok(err.message:find("mock_tool_calls", 1, true), err.message)
    end
    -- the knob object takes it too
    local r = assert(m:chat { user = "hi", max_tokens = 50,
      extra = { sim = { mock_tool_calls = { { name = "ping" } } } } })
    T.eq(r.tool_calls[1]["function"].name, "ping")
    T.eq(r.tool_calls[1]["function"].arguments, "{}")
  end
end)

T.test("record/replay: the recording keeps the request as made and the scripted answer", function()
  local path = T.tmpdb()
  local m = model "gpt-4o-mini"
  assert(llm.record.start(path))
  with_responder(function(req) return "recorded script for " .. req.user end, function()
    T.eq(assert(m:chat "one").text, "recorded script for one")
  end)
  llm.record.stop()
  -- replayed without the responder: the same request matches, the answer is the script's
  assert(llm.replay.start(path, { replay = "instant" }))
  local r = assert(m:chat "one")
  llm.replay.stop()
  T.eq(r.text, "recorded script for one")
  T.ok(r.replayed, "answered from the recording")
  T.remove_db(path)
end)

T.test("llm.batch's lines are not scripted (their bytes are the Batch API's, not m:chat's)", function()
  llm.sim.configure { batch_turnaround_s = 0.2, batch_fail_rate = 0 }
  local store = T.tmpdb()
  local calls = 0
  with_responder(function() calls = calls + 1 return "scripted" end, function()
    local res, errs = llm.batch(model "gpt-4o-mini", { "What is 2 + 3?", "What is 4 + 4?" },
      { quiet = true, store = store })
    T.eq(errs.count, 0)
    T.eq(res.n, 2)
    T.ok(res[1].text ~= "scripted" and res[2].text ~= "scripted", res[1].text)
  end)
  T.eq(calls, 0)
  T.remove_db(store)
end)
