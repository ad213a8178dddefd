-- Tools and reasoning models on the simulator, through llm.model: a
-- two-turn tool loop offline, reasoning tokens billed as completion
-- tokens, and llm.route.cheapest ranking reasoning models by what they
-- really cost (its estimate and the simulator's billing agree).
local T = ...
local cjson = require "cjson"

local function model(name, extra)
  local spec = { name = name, provider = "sim", retry_scale = 0.01,
                 headers = { ["x-sim-profile"] = "zero" } }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return llm.model(spec)
end

local WEATHER = { type = "function", ["function"] = {
  name = "get_weather", description = "Get the current weather for a city",
  parameters = { type = "object", properties = { location = { type = "string" },
    unit = { type = "string", enum = { "celsius", "fahrenheit" } } }, required = { "location" } } } }

T.test("a two-turn tool loop runs offline (OpenAI format)", function()
  local m = model "gpt-4o"
  local question = { role = "user", content = "What's the weather in Oslo in celsius?" }
  local r = assert(m:chat { messages = { question }, tools = { WEATHER } })
  T.eq(r.finish_reason, "tool_calls")
  local call = r.tool_calls and r.tool_calls[1]
  T.ok(call, "a tool call")
  T.eq(call["function"].name, "get_weather")
  T.eq(cjson.decode(call["function"].arguments), { location = "Oslo", unit = "celsius" })
  T.ok(call.id:match("^call_"), call.id)
  -- streamed, the fragments add up to the same call
  local s = assert(m:stream({ messages = { question }, tools = { WEATHER } }, { on_delta = function() end }))
  T.eq(s.tool_calls[1]["function"].arguments, call["function"].arguments)
  T.eq(s.finish_reason, "tool_calls")
  -- the caller runs the tool and sends the result: the model answers from it
  local r2 = assert(m:chat { tools = { WEATHER }, messages = {
    question,
    { role = "assistant", content = cjson.null, tool_calls = { call } },
    { role = "tool", tool_call_id = call.id, content = cjson.encode { temperature = 3, sky = "snow" } },
  } })
  T.eq(r2.finish_reason, "stop")
  T.ok(r2.text:find("According to get_weather", 1, true), r2.text)
  T.ok(r2.text:find("temperature is 3", 1, true), r2.text)
end)

T.test("reasoning tokens are completion tokens, scaled by the effort", function()
  local function mean(name, effort)
    local sum, cost, n = 0, 0, 8
    for i = 1, n do
      local r = assert(model(name):chat { messages = { { role = "user", content = "Describe plan " .. i } },
                                          reasoning_effort = effort })
      T.ok(r.usage.completion_tokens > r.usage.reasoning_tokens, name)
      sum = sum + r.usage.reasoning_tokens
      cost = cost + r.cost
      -- billed at the output price, reasoning included
      T.near(r.cost, llm.pricing.cost(name, r.usage), 1e-12)
    end
    return sum / n, cost / n
  end
  local low = mean("o3", "low")
  local high = mean("o3", "high")
  local default = mean("o3")
  T.ok(low > 300 and low < 800, "o3 low: " .. low)
  T.ok(high > 2800 and high < 5500, "o3 high: " .. high)
  T.ok(default > 1000 and default < 2200, "o3 medium by default: " .. default)
  local plain = assert(model("gpt-4o"):chat "Describe plan 1")
  T.eq(plain.usage.reasoning_tokens, 0)
end)

T.test("cheapest ranks reasoning models by their reasoning tokens", function()
  local R = llm.route
  local _, cands = R.cheapest({ "gpt-5", "gpt-4o" }, { prompt_tokens = 1000, completion_tokens = 250 })
  T.eq(cands[1].name, "gpt-4o", "medium reasoning makes gpt-5 dearer than gpt-4o")
  local g5 = cands[2]
  T.eq(g5.reasoning_tokens, 1536)
  T.near(g5.cost, 1000 * 1.25e-6 + (250 + 1536) * 1e-5, 1e-12)
  -- with minimal effort it is cheap again
  _, cands = R.cheapest({ "gpt-5", "gpt-4o" }, { prompt_tokens = 1000, completion_tokens = 250,
                                                 reasoning_effort = "minimal" })
  T.eq(cands[1].name, "gpt-5")
  T.eq(cands[1].reasoning_tokens, 32)
  -- the effort can come from the request; Claude's from its thinking budget
  _, cands = R.cheapest({ "o3" }, { completion_tokens = 100,
    request = { messages = { { role = "user", content = "hi" } }, reasoning_effort = "high" } })
  T.eq(cands[1].reasoning_tokens, 4096)
  _, cands = R.cheapest({ "claude-sonnet-4-5", "gpt-4o" }, { completion_tokens = 100,
    request = { messages = { { role = "user", content = "hi" } },
                thinking = { type = "enabled", budget_tokens = 8000 } } })
  local by = {}
  for _, c in ipairs(cands) do by[c.name] = c end
  T.eq(by["claude-sonnet-4-5"].reasoning_tokens, 2000)
  T.eq(by["gpt-4o"].reasoning_tokens, 0)
  -- a simulated model's latency includes its reasoning time
  _, cands = R.cheapest({ "o3" }, { prompt_tokens = 500, completion_tokens = 100, reasoning_effort = "low" })
  local low = cands[1].latency_ms
  _, cands = R.cheapest({ "o3" }, { prompt_tokens = 500, completion_tokens = 100, reasoning_effort = "high" })
  T.ok(cands[1].latency_ms > low + 3000, ("%.0f vs %.0f ms"):format(cands[1].latency_ms, low))
end)

T.test("the estimate matches what the simulator bills", function()
  local prompt = "Describe the design of a reliable queue."
  local n, billed, completion = 20, 0, 0
  for i = 1, n do
    local r = assert(model("o3"):chat { messages = { { role = "user", content = prompt .. " #" .. i } } })
    billed = billed + r.cost
    completion = completion + (r.usage.completion_tokens - r.usage.reasoning_tokens)
  end
  billed, completion = billed / n, completion / n
  local _, cands = llm.route.cheapest({ "o3" }, {
    request = { messages = { { role = "user", content = prompt .. " #1" } } },
    completion_tokens = math.floor(completion) })
  local est = cands[1].cost
  T.ok(math.abs(est - billed) / billed < 0.25,
    ("estimate $%.5f vs billed $%.5f (mean over %d calls)"):format(est, billed, n))
end)
