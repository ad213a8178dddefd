-- Testing your own pipeline offline: llm.sim.responder scripts what the
-- model says, so a test can drive your code down each path (a tool call,
-- a follow-up question, a rate limit) and check what it does.
--
-- The scripted answers still go through the simulator: they stream with
-- its latencies, their tokens are counted and priced, a scripted 429 is a
-- real HTTP 429 that the client retries. Both wires are exercised: the
-- OpenAI API (gpt-4o-mini) and the Messages API (claude-haiku-4-5).
--
--   llmrun examples/responder.lua        (exits 1 if a check fails)
local cjson = require "cjson"

-- ---- the code under test: a support agent with one tool -------------------------------
local TOOLS = { { type = "function", ["function"] = {
  name = "lookup_order", description = "An order's status by its number",
  parameters = { type = "object", required = { "id" }, properties = { id = { type = "string" } } } } } }

local function lookup_order(id) return { id = id, status = "shipped", eta = "Friday" } end

-- -> the answer, the number of model turns, the last response and the
-- retries over all turns; or nil, err
local function support_agent(m, question)
  local messages = { { role = "system", content = "You answer questions about orders." },
                     { role = "user", content = question } }
  local retries = 0
  for turn = 1, 4 do
    local r, err = m:chat { messages = messages, tools = TOOLS }
    if not r then return nil, err end
    retries = retries + r.retries
    if r.finish_reason ~= "tool_calls" then return r.text, turn, r, retries end
    messages[#messages + 1] = { role = "assistant", content = r.text ~= "" and r.text or nil,
                                tool_calls = r.tool_calls }
    for _, call in ipairs(r.tool_calls) do
      local args = cjson.decode(call["function"].arguments)
      messages[#messages + 1] = { role = "tool", tool_call_id = call.id,
                                  content = cjson.encode(lookup_order(args.id)) }
    end
  end
  return nil, "no answer after 4 turns"
end

-- ---- the script: what the model says to each request ---------------------------------
llm.sim.responder(function(req)
  local last = req.messages[#req.messages]
  if last.role == "tool" then -- the tool answered: report it
    local o = cjson.decode(last.content)
    return ("Order %s is %s and arrives on %s."):format(o.id, o.status, o.eta)
  end
  local id = req.user:match("#(%d+)")
  local answer = id and { tool_calls = { { name = "lookup_order", arguments = { id = id } } } }
    or { content = "Which order do you mean? Please give its number." }
  if req.user:find("urgent") then -- the API is busy once: the client must retry
    answer.error = { status = 429, attempts = 1, retry_after = 0.2 }
  end
  return answer
end)

-- ---- the checks -----------------------------------------------------------------------
local failed = 0
local function check(ok, what)
  print(("  %s  %s"):format(ok and "ok  " or "FAIL", what))
  if not ok then failed = failed + 1 end
end

for _, name in ipairs { "gpt-4o-mini", "claude-haiku-4-5" } do
  local m = llm.model { name = name, provider = "sim" } -- offline whatever keys are set
  print(name)
  local results = llm.map({ "Where is my order #4521?", "Where is my order?", "urgent: order #77?" },
    function(q) return { support_agent(m, q) } end)
  local a, b, c = results[1], results[2], results[3]
  check(a[1] == "Order 4521 is shipped and arrives on Friday." and a[2] == 2,
    ("a tool call, then the answer from its result (%s turns)"):format(a[2]))
  check(b[1] and b[1]:find("give its number", 1, true) and b[2] == 1, "no number: it asks for one")
  check(c[1] and c[1]:find("Order 77", 1, true) and c[4] == 1, "a 429 is retried by the client, once")
  local r = c[3]
  print(("        last turn: %s, %d tokens out, TTFT %.0f ms, $%.6f, skill %s"):format(
    r.finish_reason, r.usage.completion_tokens, r.ttft_ms, r.cost or 0, r.sim_skill))
end
llm.sim.responder(nil)
print(failed == 0 and "All checks passed." or (failed .. " check(s) FAILED."))
if failed > 0 then os.exit(1) end
