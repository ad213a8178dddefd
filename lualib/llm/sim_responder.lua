-- llm.sim_responder: llm.sim.responder(fn), a Lua function that scripts
-- the simulator's answers, for tests of a user's own pipeline (an agent
-- loop, a retry policy, a parser) offline and deterministically.
--
--   llm.sim.responder(function(req)
--     if req.user:find("weather") then
--       return { tool_calls = { { name = "get_weather", arguments = { city = "Paris" } } } }
--     end
--     return "It is sunny."          -- or nil: the simulator answers as usual
--   end)
--
-- The simulator is C on its own thread and cannot call Lua, so fn runs
-- here, in the calling task (it may wait: llm.sleep), before the request
-- is sent, and its answer travels in the request as the simulator's
-- scripted-answer fields (mock_response, mock_tool_calls, the sim.fault
-- knobs: src/sim/sim_mock.c, sim_knobs.c). The wire path stays real: the
-- simulator streams the answer with its latency profile, counts its usage,
-- cuts it at stop and max_tokens, and the answer is priced and logged like
-- any other, with r.sim_skill "mock" (the simulator's own answers keep
-- their skill: "filler", "tools"...).
--
-- fn(req) sees a plain table (read it, do not change it):
--   model, provider, kind ("chat" | "stream"), messages (OpenAI shape, as
--   normalized: system messages included), system (their text, or nil),
--   user (the last user message's text, or nil), tools, options (the
--   call's opts), tag and case (the call's, or an experiment's variant tag
--   and case id), body (every request field).
-- and returns:
--   nil                      the simulator answers as usual
--   "text"                   the answer (mock_response)
--   { content = "text", tool_calls = { {name =, arguments = table | JSON text}, ... },
--     error = { status = 429 | fault = "name", message =, attempts = n, retry_after = s },
--     sim = { knob = value } }
--                            any of them: tool calls (after the text);
--                            an error (a status, or any simulator fault:
--                            "drop_mid_stream"...) for the first `attempts`
--                            attempts of the call (all when absent), then
--                            the content (or the simulator's own answer);
--                            sim = per-request simulator knobs (ttft_ms...)
-- Anything else raises: a responder that returns a wrong shape is a bug in
-- the test, as is an error raised inside fn, which propagates to the
-- caller of m:chat / m:stream unchanged (the call ends as cancelled in the
-- call log, as any call an error cuts short).
--
-- Which calls: m:chat and m:stream of simulated models (provider sim,
-- Claude names routed to the simulator, every model under --dry-run);
-- embeddings, calls to other providers, llm.batch's lines and the serve
-- --proxy gateway's pass-through calls never see fn. The stage runs
-- after the cache, the budget and a batch collector (llm.pipeline): a
-- cache hit, a refused budget and a batched call are decided without it.
-- call.body is left as the caller made it (the cache key, the call log and
-- record/replay see the request, not the script); the scripted fields join
-- only the wire bytes (llm.model's wire_request, through call.sim_extra).
local pipeline = require "llm.pipeline"

local M = {}

local current -- the registered responder, or nil

local function callable(fn)
  if type(fn) == "function" then return true end
  local mt = getmetatable(fn)
  return mt ~= nil and type(mt) == "table" and type(mt.__call) == "function"
end

--- llm.sim.responder(fn) registers fn (replacing any) and returns the
-- previous one; llm.sim.responder(nil) removes it; llm.sim.responder()
-- returns the current one.
function M.responder(...)
  if select("#", ...) == 0 then return current end
  local fn = ...
  if fn ~= nil and not callable(fn) then
    error("bad argument #1 to 'llm.sim.responder' (function or nil expected, got "
      .. type(fn) .. ")", 3)
  end
  local prev = current
  current = fn
  if fn then pipeline.use("responder") else pipeline.drop("responder") end
  return prev
end

-- ---- the request fn sees ------------------------------------------------------------------

-- A message's text: a string, or the text parts of a list.
local function text_of(content)
  if type(content) == "string" then return content end
  if type(content) ~= "table" then return nil end
  local out = {}
  for _, p in ipairs(content) do
    if type(p) == "table" and type(p.text) == "string" then out[#out + 1] = p.text end
  end
  return #out > 0 and table.concat(out, "\n") or nil
end

local function request_of(call)
  local body, m = call.body, call.model
  local system, user = {}, nil
  for _, msg in ipairs(body.messages or {}) do
    if msg.role == "system" or msg.role == "developer" then
      system[#system + 1] = text_of(msg.content)
    elseif msg.role == "user" then
      user = text_of(msg.content)
    end
  end
  return {
    model = m.name, provider = m.provider, kind = call.kind,
    messages = body.messages, tools = body.tools,
    system = #system > 0 and table.concat(system, "\n") or nil, user = user,
    options = call.opts, tag = call.tag, case = call.case, body = body,
  }
end

-- ---- what fn returns -> the scripted-answer fields ----------------------------------------

local function bad(fmt, ...)
  error("llm.sim.responder: " .. fmt:format(...), 0)
end

local function plain(t)
  return type(t) == "table" and getmetatable(t) == nil
end

local function tool_call(c, i)
  if not plain(c) then bad("tool_calls[%d] must be a table {name =, arguments =}", i) end
  local f = plain(c["function"]) and c["function"] or c -- OpenAI's shape too
  local name, args = f.name, f.arguments
  if type(name) ~= "string" or name == "" then
    bad("tool_calls[%d].name must be a non-empty string", i)
  end
  if args ~= nil and type(args) ~= "string" and not plain(args) then
    bad("tool_calls[%d].arguments must be a table or a JSON object text, got %s", i, type(args))
  end
  if plain(args) and #args > 0 then
    bad("tool_calls[%d].arguments must be an object (named fields), not a list", i)
  end
  if type(args) == "string" then
    local ok, v = pcall(require("cjson").decode, args)
    if not ok or type(v) ~= "table" or not args:match("^%s*{") then
      bad("tool_calls[%d].arguments is not the text of a JSON object: %s", i, args:sub(1, 80))
    end
  end
  return { name = name, arguments = args }
end

local ANSWER_KEYS = { content = true, tool_calls = true, error = true, sim = true }
local ERROR_KEYS = { status = true, fault = true, message = true, attempts = true, retry_after = true }

local function error_knobs(e, sim)
  if not plain(e) then bad("error must be a table {status =, message =, attempts =}") end
  for k in pairs(e) do
    if not ERROR_KEYS[k] then
      bad("unknown field error.%s (known: status, fault, message, attempts, retry_after)", tostring(k))
    end
  end
  local st, fault = e.status, e.fault
  if (st == nil) == (fault == nil) then
    bad("error needs a status (429, 500...) or a fault name, one of them")
  end
  if st ~= nil then
    if math.type(st) ~= "integer" or st < 400 or st > 599 then
      bad("error.status must be an HTTP error status from 400 to 599, got %s", tostring(st))
    end
    fault = tostring(st)
  elseif type(fault) ~= "string" then
    bad("error.fault must be a simulator fault name (README: The simulator), got %s", type(fault))
  end
  sim.fault = fault
  if e.message ~= nil then
    if type(e.message) ~= "string" then bad("error.message must be a string") end
    sim.error_message = e.message
  end
  if e.attempts ~= nil then
    if math.type(e.attempts) ~= "integer" or e.attempts < 1 then
      bad("error.attempts must be an integer >= 1 (the attempts that fail)")
    end
    sim.fault_attempts = e.attempts
  end
  if e.retry_after ~= nil then
    if type(e.retry_after) ~= "number" or e.retry_after < 0 then
      bad("error.retry_after must be a number of seconds >= 0")
    end
    sim.retry_after = tostring(math.ceil(e.retry_after))
    sim.retry_after_ms = math.floor(e.retry_after * 1000 + 0.5)
  end
end

-- fn's answer -> the extra fields for the wire (nil: none).
local function fields_of(ans, call)
  if ans == nil then return nil end
  if type(ans) == "string" then return { mock_response = ans } end
  if not plain(ans) then
    bad("the responder must return nil, a string or a table {content =, tool_calls =, error =}, got %s",
      type(ans))
  end
  for k in pairs(ans) do
    if not ANSWER_KEYS[k] then
      bad("unknown answer field '%s' (known: content, tool_calls, error, sim)", tostring(k))
    end
  end
  local out, sim = {}, {}
  -- the request's own sim knobs (extra = {sim = ...}) stay, the script's win
  local own = call.body.extra and call.body.extra.sim
  if plain(own) then for k, v in pairs(own) do sim[k] = v end end
  if ans.content ~= nil then
    if type(ans.content) ~= "string" then bad("content must be a string, got %s", type(ans.content)) end
    out.mock_response = ans.content
  end
  if ans.tool_calls ~= nil then
    if not plain(ans.tool_calls) or #ans.tool_calls == 0 then
      bad("tool_calls must be a non-empty list of {name =, arguments =}")
    end
    local calls = {}
    for i, c in ipairs(ans.tool_calls) do calls[i] = tool_call(c, i) end
    out.mock_tool_calls = calls
  end
  if ans.error ~= nil then error_knobs(ans.error, sim) end
  if ans.sim ~= nil then
    if not plain(ans.sim) then bad("sim must be a table of simulator knobs") end
    for k, v in pairs(ans.sim) do sim[k] = v end
  end
  if next(sim) ~= nil then out.sim = sim end
  if next(out) == nil then return nil end
  return out
end
M.fields_of = fields_of

-- ---- the stage ------------------------------------------------------------------------------

--- sim.responder, a before-stage (llm.pipeline): asks fn for the call's
-- answer and leaves it in call.sim_extra for the wire; never decides the
-- call itself (the simulator answers it).
function M.before_stage(call)
  local fn = current
  -- only calls whose request llm.model writes (m:chat, m:stream): not the
  -- Batch API's lines, nor the gateway's pass-through of a client's bytes
  if not fn or not call.scriptable then return nil end
  local m = call.model
  if type(m) ~= "table" or not m.simulated then return nil end
  call.sim_extra = fields_of(fn(request_of(call)), call)
  return nil
end

return M
