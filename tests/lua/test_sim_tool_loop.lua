-- One script, two providers, all offline: llm.route.fallback runs a
-- two-turn tool loop on the simulator through both wire formats (the
-- OpenAI endpoint for gpt-4o-mini, the Messages API for Claude), so the
-- request mapping of tools, tool calls and tool results is exercised by a
-- server that checks them as the real APIs do (every tool_use answered by
-- a tool_result, tools with an input_schema...), not by a script.
local T = ...

local zero = { ["x-sim-profile"] = "zero" }
local tools = { { type = "function", ["function"] = {
  name = "get_weather", description = "The weather in a city",
  parameters = { type = "object", required = { "location" },
                 properties = { location = { type = "string" },
                                unit = { type = "string", enum = { "celsius", "fahrenheit" } } } } } } }

-- Turn 1 on `first`, turn 2 (after the tool's answer) on `second`.
local function loop(first, second)
  local messages = { { role = "user", content = "What's the weather in Paris in celsius?" } }
  local r1 = assert(first:chat { messages = messages, tools = tools, temperature = 0 })
  T.eq(r1.finish_reason, "tool_calls")
  T.eq(#r1.tool_calls, 1, "a dense list of one call")
  local call = r1.tool_calls[1]
  T.eq(call["function"].name, "get_weather")
  T.eq(require("cjson").decode(call["function"].arguments), { location = "Paris", unit = "celsius" })
  messages[#messages + 1] = { role = "assistant", content = r1.text ~= "" and r1.text or nil,
                              tool_calls = r1.tool_calls }
  messages[#messages + 1] = { role = "tool", tool_call_id = call.id,
                              content = '{"temperature": 18, "sky": "clear"}' }
  local r2 = assert(second:chat { messages = messages, tools = tools, temperature = 0 })
  T.eq(r2.finish_reason, "stop")
  T.ok(r2.text:find("18", 1, true) and r2.text:find("clear", 1, true), r2.text)
  return r1, r2
end

T.test("a tool loop moves from an OpenAI model to a Claude model mid-conversation", function()
  -- the first model answers turn 1, then fails for good (a 400 is not
  -- retried): the fallback sends turn 2, tool result and all, to Claude
  local oai = llm.model { name = "gpt-4o-mini", headers = zero, max_retries = 0 }
  local failing = llm.model { name = "gpt-4o-mini", max_retries = 0,
                              headers = { ["x-sim-profile"] = "zero", ["x-sim-fault"] = "400" } }
  local claude = llm.model { name = "claude-sonnet-4-5", headers = zero }
  local r1 = loop(oai, llm.route.fallback { failing, claude })
  T.eq(r1.provider, "sim")
  local _, r2 = loop(oai, llm.route.fallback { failing, claude })
  T.eq(r2.routed_to, "claude-sonnet-4-5")
  T.ok(r2.text:find("get_weather", 1, true), r2.text)
end)

T.test("and from a Claude model to an OpenAI model", function()
  local claude = llm.model { name = "claude-sonnet-4-5", headers = zero }
  local failing = llm.model { name = "claude-sonnet-4-5", max_retries = 0,
                              headers = { ["x-sim-profile"] = "zero", ["x-sim-fault"] = "400" } }
  local oai = llm.model { name = "gpt-4o-mini", headers = zero }
  local before = llm.sim.stats()
  local _, r2 = loop(claude, llm.route.fallback { failing, oai })
  T.eq(r2.routed_to, "gpt-4o-mini")
  local after = llm.sim.stats()
  T.ok(after.messages > before.messages, "turn 1 went through /v1/messages")
  T.ok(after.chat > before.chat, "turn 2 through /v1/chat/completions")
end)

T.test("the same loop, streamed, through the fallback on both wire formats", function()
  for _, names in ipairs { { "gpt-4o-mini", "claude-sonnet-4-5" }, { "claude-sonnet-4-5", "gpt-4o-mini" } } do
    local route = llm.route.fallback { llm.model { name = names[1], headers = zero },
                                       llm.model { name = names[2], headers = zero } }
    local messages = { { role = "user", content = "What's the weather in Paris in celsius?" } }
    local r1 = assert(route:stream({ messages = messages, tools = tools }, { on_delta = function() end }))
    T.eq(#r1.tool_calls, 1, names[1] .. ": one streamed call")
    T.eq(r1.tool_calls[1]["function"].name, "get_weather")
    messages[#messages + 1] = { role = "assistant", tool_calls = r1.tool_calls,
                                content = r1.text ~= "" and r1.text or nil }
    messages[#messages + 1] = { role = "tool", tool_call_id = r1.tool_calls[1].id, content = "18 and clear" }
    local r2 = assert(route:stream({ messages = messages, tools = tools }, { on_delta = function() end }))
    T.ok(r2.text:find("18 and clear", 1, true), names[1] .. ": " .. r2.text)
  end
end)
