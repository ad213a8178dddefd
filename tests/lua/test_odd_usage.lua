-- Usage values a server should never send (-5, 1.5, 1e308, a string) are
-- rejected in one place for every provider (llm.calls.check_usage): the
-- call succeeds, r.usage is nil and r.usage_invalid true, the cost is
-- unknown, one warning; and the call log readers (`llmrun logs`,
-- `llmrun report`) survive any value stored in the log, written here
-- straight into the file with the sqlite3 command.
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local calls = require "llm.calls"

local function body_with(usage_json)
  return '{"id":"c1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,'
    .. '"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}],"usage":'
    .. usage_json .. '}'
end

local function reply(body)
  return "status 200\nheader Content-Type: application/json\nbody " .. body
end

local function model_for(srv)
  return llm.model { name = "gpt-4o-mini", provider = "openai", base_url = srv.url .. "/v1",
                     api_key = "sk-test", max_retries = 0 }
end

local ODD = {
  '{"prompt_tokens":-5,"completion_tokens":3,"total_tokens":-2}',
  '{"prompt_tokens":1e308,"completion_tokens":3}',
  '{"prompt_tokens":12.5,"completion_tokens":3}',
  '{"prompt_tokens":12,"completion_tokens":"3"}',
  '{"prompt_tokens":12,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":-1}}',
  '{"prompt_tokens":99999999999999,"completion_tokens":3}',
}

T.test("odd usage: the call succeeds with no usage, usage_invalid, an unknown cost", function()
  local db = T.tmpdb()
  llm.log.use(db)
  local blocks = {}
  for i, u in ipairs(ODD) do blocks[i] = reply(body_with(u)) end
  blocks[#blocks + 1] = reply(body_with('{"prompt_tokens":12,"completion_tokens":3}'))
  local srv <close> = mock.start(table.concat(blocks, "\n---\n") .. "\n")
  local m = model_for(srv)
  for i = 1, #ODD do
    local r, err = m:chat("hi " .. i, { case = i })
    T.ok(r, tostring(err))
    T.eq(r.text, "fine")
    T.eq(r.usage, nil, "usage of " .. ODD[i])
    T.eq(r.usage_invalid, true, "usage_invalid for " .. ODD[i])
    T.eq(r.cost, nil, "cost of " .. ODD[i])
  end
  -- a sane answer afterwards is priced as usual
  local r = assert(m:chat("sane"))
  T.eq(r.usage.prompt_tokens, 12)
  T.eq(r.usage_invalid, nil)
  T.ok(type(r.cost) == "number" and r.cost > 0)
  assert(llm.log.flush())
  local reader = assert(llm.log.reader())
  local rows = reader:calls(llm.log.run_id(), 0)
  reader:close()
  T.eq(#rows, #ODD + 1)
  for _, row in ipairs(rows) do
    T.eq(row.status, "ok")
    if row.case then
      T.eq(row.prompt_tokens, nil, "no tokens logged for case " .. row.case)
      T.eq(row.cost, nil)
    end
  end
  llm.log.use(T.tmpdb())
  T.remove_db(db)
end)

T.test("check_usage: partial streams and what a cache hit saved are checked too", function()
  local p = { text = "part", usage = { prompt_tokens = 1, completion_tokens = -1 } }
  T.eq(calls.check_usage({ model = { name = "x" } }, p), false)
  T.eq(p.usage, nil)
  T.eq(p.usage_invalid, true)
  local hit = { cached = "exact", usage = { prompt_tokens = 0, completion_tokens = 0 },
                saved = { usage = { prompt_tokens = 0 / 0, completion_tokens = 1 } } }
  T.eq(calls.check_usage({ model = { name = "x" } }, hit), false)
  T.eq(hit.saved.usage, nil)
  T.eq(hit.saved.usage_invalid, true)
  T.ok(hit.usage, "the hit's own usage is fine")
  local fine = { usage = { prompt_tokens = 10, completion_tokens = 2, total_tokens = 12, cached_tokens = 0 } }
  T.eq(calls.check_usage({}, fine), true)
  T.eq(fine.usage.prompt_tokens, 10)
  T.eq(calls.check_usage({}, { usage = { prompt_tokens = math.huge } }), false)
  T.eq(calls.check_usage({}, { usage = "12" }), false)
end)

T.test("odd usage: one warning per process, on stderr", function()
  local blocks = {}
  for i = 1, 3 do blocks[i] = reply(body_with(ODD[i])) end
  local srv <close> = mock.start(table.concat(blocks, "\n---\n") .. "\n")
  local code = ([[
    local m = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = %q,
                          api_key = "sk-test", max_retries = 0 }
    for i = 1, 3 do assert(m:chat("hi " .. i).usage_invalid) end
    print("calls ok")]]):format(srv.url .. "/v1")
  local status, out, err = T.llmrun("-e '" .. code:gsub("'", "'\\''") .. "'", { env = { LLMRUN_LOG = "0" } })
  T.eq(status, 0, err)
  T.ok(out:find("calls ok", 1, true))
  local _, n = err:gsub("token usage for openai/gpt%-4o%-mini is unusable", "")
  T.eq(n, 1, "warnings in: " .. err)
  T.ok(err:find("prompt_tokens = -5", 1, true), err)
end)

-- ---- the readers, on whatever the file holds ------------------------------------------

local function sqlite(db, sql)
  local f = assert(io.popen(("sqlite3 '%s' 2>&1 <<'SQL'\n%s\nSQL"):format(db, sql)))
  local out = f:read("a")
  local ok = f:close()
  assert(ok, "sqlite3 failed (scripts/setup installs it): " .. out)
  return out
end

T.test("the log readers never crash on stored values", function()
  local dir = T.tmpdir()
  local db = dir .. "/llmrun/runs.db"
  -- a real log first, with a run, so the schema is this build's
  local status, _, err = T.llmrun([[-e 'llm.model("gpt-4o-mini"):chat("hi")']],
    { env = { XDG_DATA_HOME = dir, LLMRUN_SIM_PROFILE = "zero" } })
  T.eq(status, 0, err)
  local run = sqlite(db, "SELECT run_id FROM runs LIMIT 1;"):match("%S+")
  T.ok(run)
  -- every column of calls gets values no writer of ours makes
  local values = { "-5", "1e308", "-1e308", "9e999", "-9e999", "12.5", "'text'", "x'00ff'",
                   "9223372036854775807", "-9223372036854775808", "NULL", "''", "0" }
  local cols = { "started_at", "latency_ms", "ttft_ms", "prompt_tokens", "completion_tokens",
                 "cached_tokens", "cache_creation_tokens", "input_tokens", "cost", "retries",
                 "http_status", "simulated" }
  local stmts = {}
  for i, v in ipairs(values) do
    local sets = {}
    for _, c in ipairs(cols) do
      -- simulated and retries are NOT NULL columns
      sets[#sets + 1] = (v == "NULL" and (c == "simulated" or c == "retries")) and "'?'" or v
    end
    local status_v = ({ "'ok'", "'error'", "'partial'", "'cancelled'", "'weird\27[31m'" })[i % 5 + 1]
    stmts[#stmts + 1] = ("INSERT INTO calls(run, tag, case_id, model, provider, kind, status, "
      .. "cache_kind, error_kind, request_id, %s) VALUES ((SELECT id FROM runs), %s, %s, %s, %s, "
      .. "'chat', %s, %s, %s, %s, %s);"):format(table.concat(cols, ", "), v, v, v, v, status_v,
        i % 3 == 0 and "'exact'" or "NULL", v, v, table.concat(sets, ", "))
  end
  stmts[#stmts + 1] = "UPDATE runs SET last_call = (SELECT max(id) FROM calls), "
    .. "started_at = 1e308, simulated = 'x';"
  sqlite(db, table.concat(stmts, "\n"))
  local env = { XDG_DATA_HOME = dir }
  for _, args in ipairs { "logs", "logs -n 0", "logs --json -n 0", "logs --runs", "logs --runs --json",
                          "logs --run " .. run, "report", "report --json", "report " .. run,
                          "report --by model", "report --reprice gpt-4o",
                          "report --html " .. dir .. "/r.html" } do
    local st, out, e = T.llmrun(args, { env = env })
    T.eq(st, 0, args .. ": " .. e)
    T.ok(not e:find("traceback", 1, true) and not e:find("no integer representation", 1, true),
      args .. ": " .. e)
    if args == "logs --json -n 0" then
      local n = 0
      for line in out:gmatch("[^\n]+") do
        n = n + 1
        local ok, row = pcall(cjson.decode, line)
        T.ok(ok, "valid JSON: " .. line)
        -- counts are whole numbers in range or absent
        for _, k in ipairs { "prompt_tokens", "completion_tokens", "cached_tokens" } do
          local v = row[k]
          T.ok(v == nil or (v == math.floor(v) and v >= 0 and v <= calls.MAX_TOKENS),
            k .. " = " .. tostring(v))
        end
        T.ok(row.cost == nil or (row.cost >= 0 and row.cost < math.huge), "cost " .. tostring(row.cost))
      end
      T.eq(n, #values + 1)
    end
  end
end)
