-- `llmrun --dry-run script.lua`: every model goes to the simulator (whatever
-- its provider, base_url or key), each request asks for the zero-latency
-- profile, and the table on stderr gives tokens and cost per model.
--
-- Until the built-in simulator (lualib/llm/sim.lua) exists, the script
-- under test installs a stand-in llm.sim whose ensure() returns the
-- scripted server's URL, so the whole path (flag, rewrite, header,
-- prices, summary) still runs over HTTP; with the real simulator the
-- checks compare the table with the usage the script itself saw.
local T = ...
local mock = require "mock"
local cjson = require "cjson"

local SCRIPT = [=[
local url = os.getenv("TEST_SIM_URL")
local stand_in = not package.searchpath("llm.sim", package.path)
if stand_in then
  package.loaded["llm.sim"] = { ensure = function() return url end }
end
local cjson = require "cjson"
local models = {
  llm.model "gpt-4o",
  llm.model { name = "anthropic/claude-sonnet-4-5", api_key = "sk-ant-SECRET-1" },
  llm.model { name = "gpt-4o-mini", provider = "openai", base_url = "http://192.0.2.1:9/v1",
              api_key = "sk-SECRET-2" },
  llm.model "acme-unpriced",
}
local plan = { 1, 1, 2, 3, 3, 3, 4 }
local seen = { stand_in = stand_in, providers = {}, calls = {} }
for i, m in ipairs(models) do seen.providers[i] = m.provider end
for _, i in ipairs(plan) do
  local r, err = models[i]:chat { messages = { { role = "user", content = "Say hi." } }, max_tokens = 100 }
  assert(r, tostring(err))
  seen.calls[#seen.calls + 1] = { model = i, usage = r.usage, cost = r.cost or cjson.null }
end
print(cjson.encode(seen))
]=]

local USAGE = { prompt_tokens = 1000, completion_tokens = 100, total_tokens = 1100 }

local function serve()
  local body = cjson.encode {
    id = "chatcmpl-1", object = "chat.completion", model = "x",
    choices = { { index = 0, message = { role = "assistant", content = "hi" }, finish_reason = "stop" } },
    usage = USAGE,
  }
  local srv = mock.start("status 200\nheader Content-Type: application/json\nbody " .. body .. "\n")
  return setmetatable(srv, { __close = function(s) s:stop() end })
end

local function write_tmp(text)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

-- The rows of the summary table: name -> {calls, errors, prompt, cached, completion, cost text}
local function table_rows(err)
  local rows = {}
  for line in err:gmatch("[^\n]+") do
    local name, calls, errors, prompt, cached, completion, cost =
      line:match("^  (%S+)%s+(%d+)%s+(%d+)%s+(%d+)%s+(%d+)%s+(%d+)%s+(.-)%s*$")
    if name then
      rows[name] = { tonumber(calls), tonumber(errors), tonumber(prompt), tonumber(cached),
                     tonumber(completion), cost }
    end
  end
  return rows
end

T.test("--dry-run: simulated calls, real prices, a table per model", function()
  local srv <close> = serve()
  local path = write_tmp(SCRIPT)
  local status, out, err = T.llmrun("--dry-run " .. path, { env = { TEST_SIM_URL = srv.url .. "/v1" } })
  os.remove(path)
  T.eq(status, 0, err)
  local seen = cjson.decode(out)
  T.eq(seen.providers, { "sim", "sim", "sim", "sim" }, "every model goes to the simulator")
  T.ok(err:find("llmrun --dry-run: estimated tokens and cost of a real run", 1, true), err)
  T.ok(not err:find("OPENAI_API_KEY", 1, true), "no simulator notice in a dry run")
  T.ok(not err:find("SECRET", 1, true), "keys never printed")
  T.eq(select(2, err:gsub('no price known for model "acme%-unpriced"', "")), 1, "one warning")

  local rows = table_rows(err)
  local names = { "gpt-4o", "anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini", "acme-unpriced" }
  -- the table agrees with what the script's responses said
  local want = {}
  for _, c in ipairs(seen.calls) do
    local w = want[c.model] or { 0, 0, 0, 0, 0, 0 }
    w[1] = w[1] + 1
    w[3] = w[3] + c.usage.prompt_tokens
    w[4] = w[4] + (c.usage.cached_tokens or 0)
    w[5] = w[5] + c.usage.completion_tokens
    w[6] = c.cost ~= cjson.null and w[6] + c.cost or nil
    want[c.model] = w
  end
  for i, name in ipairs(names) do
    local r, w = rows[name], want[i]
    T.ok(r, "row for " .. name .. " in\n" .. err)
    T.eq({ r[1], r[2], r[3], r[4], r[5] }, { w[1], 0, w[3], w[4], w[5] }, name)
    if w[6] then T.eq(r[6], ("%.6f"):format(w[6]), name .. " cost") else T.eq(r[6], "unknown", name) end
  end
  T.eq(rows.total[1], 7)
  T.ok(rows.total[6]:find("+ unknown", 1, true), "a total with an unpriced model says so")

  if seen.stand_in then
    -- hand-computed from the fixed usage (1000 prompt, 100 completion tokens):
    -- gpt-4o 2 x (1000*2.5e-6 + 100*1e-5) = 0.007; claude-sonnet-4-5
    -- 1000*3e-6 + 100*1.5e-5 = 0.0045; gpt-4o-mini 3 x (1000*1.5e-7 + 100*6e-7) = 0.00063
    T.eq(rows["gpt-4o"], { 2, 0, 2000, 0, 200, "0.007000" })
    T.eq(rows["anthropic/claude-sonnet-4-5"], { 1, 0, 1000, 0, 100, "0.004500" })
    T.eq(rows["openai/gpt-4o-mini"], { 3, 0, 3000, 0, 300, "0.000630" })
    T.eq(rows.total, { 7, 0, 7000, 0, 700, "0.012130 + unknown" })
    local reqs = srv:requests()
    T.eq(#reqs, 7, "every call reached the simulator (none went to 192.0.2.1)")
    for _, q in ipairs(reqs) do
      T.eq(q.headers["x-sim-profile"], "zero")
      T.eq(q.headers["authorization"], nil, "no key is sent to the simulator")
      T.eq(q.headers["x-api-key"], nil)
      T.eq(q.path, "/v1/chat/completions")
    end
    local bodies = {}
    for i, q in ipairs(reqs) do bodies[i] = cjson.decode(q.body).model end
    T.eq(bodies, { "gpt-4o", "gpt-4o", "claude-sonnet-4-5", "gpt-4o-mini", "gpt-4o-mini",
                   "gpt-4o-mini", "acme-unpriced" })
  end
end)

T.test("--dry-run with no calls, and without the flag nothing is printed", function()
  local path = write_tmp("print('done')\n")
  local status, out, err = T.llmrun("--dry-run " .. path)
  T.eq(status, 0, err)
  T.eq(out, "done\n")
  T.ok(err:find("the script made no model calls", 1, true), err)
  status, out, err = T.llmrun(path)
  os.remove(path)
  T.eq({ status, out, err }, { 0, "done\n", "" })
end)
