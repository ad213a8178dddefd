-- A Claude model with no key runs on the simulator through the anthropic
-- wire format and POST /v1/messages: the same client code as a real
-- Anthropic call (llm.providers.anthropic), offline. Chat, streams,
-- usage and cost, retried 529s and 429s, a mid-stream error event.
local T = ...

local function model(name, extra)
  local spec = { name = name or "claude-sonnet-4-5", retry_scale = 0.01,
                 headers = { ["x-sim-profile"] = "zero" } }
  for k, v in pairs(extra or {}) do
    if k == "headers" then
      for hk, hv in pairs(v) do spec.headers[hk] = hv end
    else
      spec[k] = v
    end
  end
  return llm.model(spec)
end

local function stats() return llm.sim.stats() end

T.test("a Claude name goes to the simulator's Messages API", function()
  for _, name in ipairs({ "claude-sonnet-4-5", "sim/claude-haiku-4-5" }) do
    local m = model(name)
    T.eq(m.provider, "sim", name)
    T.eq(m.simulated, true, name)
    T.eq(m.format.name, "anthropic", name)
    local before = stats()
    local r = assert(m:chat "What is 12 + 30?")
    local after = stats()
    T.eq(after.messages - before.messages, 1, name .. ": one request to /v1/messages")
    T.eq(after.chat - before.chat, 0, name .. ": none to /v1/chat/completions")
    T.eq(r.text, "42", name)
    T.eq(r.provider, "sim", name)
    T.eq(r.simulated, true, name)
    T.eq(r.finish_reason, "stop", name)
    T.ok(r.request_id and r.request_id:match("^req_011C"), tostring(r.request_id))
  end
  -- an OpenAI name still speaks OpenAI
  local g = model("gpt-4o")
  T.eq(g.format.name, "openai")
end)

T.test("usage and cost follow Anthropic's rules", function()
  local m = model()
  local r = assert(m:chat { messages = { { role = "system", content = "Be brief." },
                                         { role = "user", content = "Describe the sea." } } })
  T.ok(r.usage.prompt_tokens > 5 and r.usage.completion_tokens > 5)
  T.eq(r.usage.cached_tokens, 0)
  T.eq(r.usage.cache_creation_tokens, 0)
  -- claude-sonnet-4-5: $3 / MTok in, $15 / MTok out
  T.near(r.cost, r.usage.prompt_tokens * 3e-6 + r.usage.completion_tokens * 15e-6, 1e-12)
end)

T.test("a stream gives the same text and usage as the call", function()
  local m = model()
  local req = { messages = { { role = "user", content = "Describe a lighthouse." } }, max_tokens = 500 }
  local r = assert(m:chat(req))
  local parts = {}
  local s = assert(m:stream(req, { on_delta = function(d) parts[#parts + 1] = d.text end }))
  T.eq(table.concat(parts), r.text)
  T.eq(s.text, r.text)
  T.eq(s.usage.completion_tokens, r.usage.completion_tokens)
  T.eq(s.usage.prompt_tokens, r.usage.prompt_tokens)
  T.eq(s.finish_reason, "stop")
  T.ok(#parts > 3)
  -- max_tokens cuts: "length"
  local cut = assert(m:chat { messages = req.messages, max_tokens = 3 })
  T.eq(cut.finish_reason, "length")
  T.eq(cut.usage.completion_tokens, 3)
end)

T.test("529 and 429 are retried, and fail with their status without retries", function()
  for _, fault in ipairs({ "529", "429" }) do
    local before = stats().requests
    local r, err = model(nil, { headers = { ["x-sim-fault"] = fault, ["x-sim-fault-attempts"] = "1",
                                            ["x-sim-retry-after-ms"] = "5" } }):chat "hi"
    T.ok(r, fault .. ": " .. tostring(err))
    T.eq(r.retries, 1, fault)
    T.eq(stats().requests - before, 2, fault)
    r, err = model(nil, { max_retries = 0, headers = { ["x-sim-fault"] = fault } }):chat "hi"
    T.eq(r, nil)
    T.eq({ err.kind, err.status }, { "http", tonumber(fault) }, fault)
    T.ok(tostring(err.message):find(fault == "529" and "Overloaded" or "rate limit", 1, true),
      tostring(err.message))
  end
end)

T.test("an overloaded_error event mid-stream fails the stream, keeping its text", function()
  local m = model(nil, { headers = { ["x-sim-fault"] = "error_chunk", ["x-sim-fault-after"] = "3" } })
  local got = {}
  local ok, err = pcall(function()
    for d in m:stream "Describe the sea." do got[#got + 1] = d.text end
  end)
  T.eq(ok, false)
  T.ok(tostring(type(err) == "table" and err.message or err):find("Overloaded", 1, true), tostring(err))
  T.ok(#got >= 1, "deltas before the error")
end)

T.test("the request's mistakes come back as Anthropic's 400s", function()
  local r, err = model("claude-3-opus-20240229"):chat { messages = { { role = "user", content = "hi" } },
                                                       max_tokens = 9000 }
  T.eq(r, nil)
  T.eq(err.status, 400)
  T.ok(tostring(err.message):find("max_tokens: 9000 > 4096", 1, true), tostring(err.message))
end)
