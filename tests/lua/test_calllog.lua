-- The call log through real model calls (against the scripted server):
-- one row per call whatever its outcome, never an API key, tags and
-- cases, cache hits, the switches (LLMRUN_LOG=0, llm.log.off), an
-- unwritable data directory (one warning, the calls still succeed), and
-- reports and repricing from the log.
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local calls = require "llm.calls"
local tmpdir = T.tmpdir

local KEY = "sk-test-NEVER-IN-THE-LOG-0123456789"

local function ok_body(text)
  return cjson.encode {
    id = "c1", object = "chat.completion", model = "gpt-4o-mini",
    choices = { { index = 0, message = { role = "assistant", content = text }, finish_reason = "stop" } },
    usage = { prompt_tokens = 12, completion_tokens = 3, total_tokens = 15,
              prompt_tokens_details = { cached_tokens = 4 } },
  }
end

local function reply(status, body, headers)
  local lines = { "status " .. status }
  for _, h in ipairs(headers or {}) do lines[#lines + 1] = "header " .. h end
  lines[#lines + 1] = "header Content-Type: application/json"
  lines[#lines + 1] = "body " .. body
  return table.concat(lines, "\n")
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function model_for(srv)
  return llm.model { name = "gpt-4o-mini", provider = "openai", base_url = srv.url .. "/v1",
                     api_key = KEY, retry_scale = 0.01, max_retries = 0 }
end

T.test("every call is a row: ok, error, partial stream, cache hit; never the key", function()
  local dir = tmpdir() .. "/private"   -- made by the log, so 0700
  local db = dir .. "/runs.db"
  llm.log.use(db)
  local srv = mock.start(table.concat({
    reply(200, ok_body("fine"), { "x-request-id: req_ok_1" }),
    reply(400, '{"error":{"message":"bad ' .. KEY .. '","type":"invalid_request_error"}}',
          { "x-request-id: req_bad_2" }),
  }, "\n---\n") .. "\n")
  local m = model_for(srv)
  local r, err = m:chat("hi", { tag = "baseline", case = "q1" })
  T.ok(r, tostring(err))
  local r2, err2 = m:chat("bad", { tag = "baseline", case = 2 })
  T.eq(r2, nil)
  T.eq(err2.status, 400)
  -- a stream cut short after some text, as model.lua reports it (the
  -- outcome is handed to calls.finish directly: this test is about the
  -- log's row, test_stream.lua about how a cut stream is read)
  local sc = calls.begin(m, "stream", {}, { tag = "stream" })
  calls.finish(sc, nil, llm.error("transport", "cut", { truncated = true }),
    require("llm.response").new { text = "half", partial = true,
      usage = { prompt_tokens = 5, completion_tokens = 1 } })
  -- a cache hit, answered by a before-hook as the cache does
  local function hit(call)
    if call.tag == "cached" then
      return require("llm.response").new { text = "from cache", cached = "exact",
        usage = { prompt_tokens = 12, completion_tokens = 3 }, latency_ms = 999, cost = 0.5 }
    end
  end
  calls.on_before(hit)
  local r4 = m:chat("hi", { tag = "cached" })
  calls.off(hit)
  T.eq(r4.text, "from cache")
  srv:stop()
  T.ok(llm.log.flush())

  local reader = assert(llm.log.reader(db))
  local id = reader:find_run()
  T.eq(id, llm.log.run_id())
  local rows = reader:calls(id, 0)
  T.eq(#rows, 4)
  local by = {}
  for _, row in ipairs(rows) do by[row.tag] = by[row.tag] or row end
  local ok = by.baseline.status == "ok" and by.baseline or rows[#rows]
  T.eq(ok.status, "ok")
  T.eq(ok.case, "q1")
  T.eq(ok.model, "gpt-4o-mini")
  T.eq(ok.provider, "openai")
  T.eq(ok.kind, "chat")
  T.eq(ok.prompt_tokens, 12)
  T.eq(ok.completion_tokens, 3)
  T.eq(ok.cached_tokens, 4)
  T.eq(ok.request_id, "req_ok_1")
  T.eq(ok.simulated, false)
  T.ok(ok.latency_ms > 0 and ok.started_at > 1.7e9)
  local bad
  for _, row in ipairs(rows) do if row.status == "error" then bad = row end end
  T.eq(bad.error_kind, "http")
  T.eq(bad.http_status, 400)
  T.eq(bad.case, "2")
  T.eq(bad.request_id, "req_bad_2")
  T.eq(by.stream.status, "partial")
  T.eq(by.stream.kind, "stream")
  T.eq(by.cached.cache_kind, "exact")
  T.eq(by.cached.cost, 0)
  T.ok(by.cached.latency_ms < 999, "a hit logs its lookup time")
  local runs = reader:runs(5)
  T.eq(#runs, 1)
  T.ok(runs[1].script:find("runner.lua", 1, true))
  reader:close()
  -- the key appears nowhere in the files (it was even in an error body)
  for _, f in ipairs { db, db .. "-wal", db .. "-shm" } do
    T.ok(not read_file(f):find(KEY, 1, true), f)
  end
  local st = io.popen("stat -c %a '" .. db .. "' '" .. dir .. "'"):read("a")
  T.eq(st, "600\n700\n")
end)

-- Runs a script in a fresh llmrun with the given env; returns status, out, err.
local function run_script(src, env)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
  local status, out, err = T.llmrun("'" .. path .. "'", { env = env })
  os.remove(path)
  return status, out, err
end

local CALLS = [[
  local mock = dofile(os.getenv("LLMRUN_SOURCE_DIR") .. "/tests/lua/mock.lua")
  local body = %q
  local srv = mock.start("status 200\nheader Content-Type: application/json\nbody " .. body .. "\n")
  local m = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = srv.url .. "/v1", api_key = "k" }
  %s
  for i = 1, 3 do assert(m:chat("hi", { tag = "t" })) end
  srv:stop()
  print("calls ok")
]]

T.test("LLMRUN_LOG=0 and llm.log.off() log nothing", function()
  for _, case in ipairs {
    { env = { LLMRUN_LOG = "0" }, code = "" },
    { env = {}, code = "llm.log.off() assert(llm.log.enabled() == false)" },
  } do
    local dir = tmpdir()
    case.env.XDG_DATA_HOME = dir
    local status, out, err = run_script(CALLS:format(ok_body("x"), case.code), case.env)
    T.eq(status, 0, err)
    T.eq(out, "calls ok\n")
    T.eq(read_file(dir .. "/llmrun/runs.db"), "", "no database")
  end
end)

T.test("a dry run logs nothing", function()
  local status, out = T.llmrun([[-e "print(llm.log.enabled())"]], { env = { LLMRUN_DRY_RUN = "1" } })
  T.eq(status, 0)
  T.eq(out, "false\n")
  status, out = T.llmrun([[-e "print(llm.log.enabled())"]], { env = { LLMRUN_DRY_RUN = "0" } })
  T.eq(out, "true\n")
end)

T.test("an unwritable data directory: the calls succeed, one warning", function()
  local dir = tmpdir()
  local plain = dir .. "/not-a-dir"
  io.open(plain, "w"):close()
  local status, out, err = run_script(CALLS:format(ok_body("x"), ""), { XDG_DATA_HOME = plain })
  T.eq(status, 0, err)
  T.eq(out, "calls ok\n")
  local _, warnings = err:gsub("warning: the call log is off", "")
  T.eq(warnings, 1, err)
  -- a newer schema: refused clearly, calls still fine. The file is made
  -- by the log itself, then its user_version (header bytes 60-63, big
  -- endian: https://www.sqlite.org/fileformat.html) is set to 7.
  local d2 = tmpdir()
  local path = d2 .. "/llmrun/runs.db"
  assert(require("_llm.calllog").open(path)):close()
  local f = assert(io.open(path, "r+b"))
  f:seek("set", 60)
  f:write(string.pack(">I4", 7))
  f:close()
  status, out, err = run_script(CALLS:format(ok_body("x"), ""), { XDG_DATA_HOME = d2 })
  T.eq(status, 0, err)
  T.eq(out, "calls ok\n")
  T.ok(err:find("schema version 7, newer than this llmrun", 1, true), err)
  local _, n = err:gsub("warning:", "")
  T.eq(n, 1, err)
end)

T.test("the run row is written once, at the first call", function()
  local dir = tmpdir()
  local status, _, err = run_script(CALLS:format(ok_body("x"), "") ..
    "assert(llm.log.flush()) print(llm.log.run_id())", { XDG_DATA_HOME = dir })
  T.eq(status, 0, err)
  local reader = assert(llm.log.reader(dir .. "/llmrun/runs.db"))
  local runs = reader:runs(0)
  T.eq(#runs, 1)
  T.eq(runs[1].calls, 3)
  reader:close()
  -- a script that never calls a model writes nothing
  local d2 = tmpdir()
  status = run_script("local m = llm.model 'sim/gpt-4o-mini' print('no calls')", { XDG_DATA_HOME = d2 })
  T.eq(read_file(d2 .. "/llmrun/runs.db"), "")
end)

T.test("reports from the log, and repricing through llm.pricing", function()
  local dir = tmpdir()
  local db = dir .. "/runs.db"
  llm.log.use(db)
  local fake = { name = "gpt-4o", provider = "openai", simulated = false }
  for i = 1, 30 do
    for _, v in ipairs { { "baseline", 200 }, { "optimized", 100 } } do
      local c = calls.begin(fake, "chat", {}, { tag = v[1], case = "c" .. i })
      c.t0 = c.t0 - v[2] / 1000
      calls.finish(c, require("llm.response").new { text = "x", latency_ms = v[2], ttft_ms = v[2] / 2,
        usage = { prompt_tokens = 1000, completion_tokens = v[2] }, cost = v[2] * 1e-5, cached = false })
    end
  end
  assert(llm.log.flush())
  local rep = assert(llm.report.from_log { path = db })
  T.eq(rep.baseline, "baseline")
  T.eq(#rep.variants, 2)
  T.eq(rep.paired, true)
  T.eq(rep:metric("latency_p50").vs.optimized.effect, 0.5)
  T.eq(rep:metric("latency_p50").vs.optimized.verdict, "better")
  local nope, why = llm.report.from_log { path = db, runs = { "does-not-exist" } }
  T.eq(nope, nil)
  T.ok(why:find("no run matches 'does-not-exist'", 1, true), why)

  -- repriced by llm.pricing: every call as gpt-4o-mini, from its prices
  local pricing = require "llm.pricing"
  local e = assert(pricing.get("gpt-4o-mini"))
  local rp = assert(llm.report.from_log { path = db, reprice = "gpt-4o-mini" })
  local row = rp:metric("cost_repriced")
  T.ok(row, "a repriced cost row")
  T.eq(row.label, "cost repriced as gpt-4o-mini")
  T.eq(row.per, "total")
  T.near(row.values.baseline, 30 * (1000 * e.input + 200 * e.output), 1e-12)
  T.near(row.values.optimized, 30 * (1000 * e.input + 100 * e.output), 1e-12)
  T.near(row.vs.optimized.effect, (1000 * e.input + 100 * e.output) / (1000 * e.input + 200 * e.output), 1e-9)
  T.ok(row.vs.optimized.lo and row.vs.optimized.hi, "paired cases give an interval")
  T.ok(rp:text():find("cost repriced as gpt-4o-mini", 1, true))
  local bad, berr = llm.report.from_log { path = db, reprice = "no-such-model-xyz" }
  T.eq(bad, nil)
  T.ok(berr:find("cannot reprice as no-such-model-xyz", 1, true) and berr:find("no price known", 1, true), berr)
  local bad2, berr2 = llm.report.from_log { path = db, reprice = "gpt-4o-mini,what" }
  T.eq(bad2, nil)
  T.ok(berr2:find("--reprice:", 1, true), berr2)

  -- another implementation's shape (per-record costs) is read too
  local seen = 0
  package.loaded["llm.pricing"] = {
    reprice = function(records)
      seen = math.max(seen, #records)
      local out = {}
      for i, r in ipairs(records) do out[i] = (r.prompt_tokens + r.completion_tokens) * 1e-7 end
      return out
    end }
  local rs = assert(llm.report.from_log { path = db, reprice = "anything" })
  T.eq(seen, 30)
  T.near(rs:metric("cost_repriced").values.baseline, 30 * 1200 * 1e-7, 1e-12)
  -- and without any prices: a clear refusal
  package.loaded["llm.pricing"] = nil
  package.preload["llm.pricing"] = function() error("no prices here") end
  local none, perr = llm.report.from_log { path = db, reprice = "gpt-4o-mini" }
  T.eq(none, nil)
  T.ok(perr:find("--reprice needs prices", 1, true), perr)
  package.preload["llm.pricing"] = nil
  package.loaded["llm.pricing"] = pricing
end)

T.test("reports over several runs, and a run with no calls", function()
  local calllog = require "_llm.calllog"
  local dir = tmpdir()
  local db = dir .. "/runs.db"
  local ids = { "20260101-000000-aaaaaa", "20260102-000000-bbbbbb" }
  for k, id in ipairs(ids) do
    local log = assert(calllog.open(db))
    log:set_run { run_id = id, script = "x.lua", version = "0", started_at = 1.7e9 + k, simulated = false }
    for i = 1, 10 do
      log:append { tag = "t", case = "c" .. i, model = "m", provider = "openai", kind = "chat",
        simulated = false, started_at = 1.7e9 + k, latency_ms = 100 * k, ttft_ms = 10,
        prompt_tokens = 5, completion_tokens = 5, cached_tokens = 0, cost = 0.001 * k,
        status = "ok", retries = 0 }
    end
    log:close()
  end
  local rep = assert(llm.report.from_log { path = db, runs = { "20260101", "20260102" } })
  T.eq(#rep.variants, 2)
  T.eq(rep.variants[1].name, ids[1] .. "/t")
  T.eq(rep.baseline, ids[1] .. "/t")
  T.eq(rep:metric("latency_p50").vs[ids[2] .. "/t"].effect, 2.0)
  T.eq(rep.paired, true)
  local latest = assert(llm.report.from_log { path = db })
  T.eq(latest.title, "run " .. ids[2])
  local amb, why = llm.report.from_log { path = db, runs = { "2026010" } }
  T.eq(amb, nil)
  T.ok(why:find("ambiguous", 1, true), why)
  -- a run row without calls cannot exist (the run is written with its first
  -- call), but an empty group list must still be a clear message
  local empty = assert(calllog.open(dir .. "/empty.db"))
  empty:close()
  local none, nwhy = llm.report.from_log { path = dir .. "/empty.db" }
  T.eq(none, nil)
  T.eq(nwhy, "no runs logged yet")
end)

T.test("append takes a row table: each field comes back from the reader", function()
  local calllog = require "_llm.calllog"
  local db = tmpdir() .. "/rows.db"
  local log = assert(calllog.open(db))
  log:set_run { run_id = "20260301-000000-cccccc", script = "x.lua", version = "0", started_at = 1.7e9 }
  local row = {
    tag = "t", case = "c1", model = "gpt-4o", provider = "openai", kind = "chat", simulated = true,
    started_at = 1.7e9 + 1, latency_ms = 123.5, ttft_ms = 45.25, prompt_tokens = 10,
    completion_tokens = 20, cached_tokens = 3, cache_creation_tokens = 4, input_tokens = 5,
    cost = 0.0125, cache_kind = "exact", status = "error", retries = 2, error_kind = "http",
    http_status = 503, request_id = "req_1", client = "127.0.0.1:5432",
  }
  -- the texts (call_texts) come back from reader:search with texts
  local texts = { prompt = "user: hi", response = "hello", error = "HTTP 503" }
  local full = {}
  for k, v in pairs(row) do full[k] = v end
  for k, v in pairs(texts) do full[k] = v end
  T.eq(log:append(full), nil)
  log:append { model = "m" } -- every other field missing: stored as NULL, status "ok"
  assert(log:flush())
  log:close()
  local r = assert(calllog.reader(db))
  local got = r:calls(nil, 0)
  local found = r:search { texts = true, model = "gpt-4o" }
  r:close()
  T.eq(#found, 1)
  for k, v in pairs(full) do T.eq(found[1][k], v, k) end
  T.eq(#got, 2)
  local back = got[1].model == "gpt-4o" and got[1] or got[2]
  local bare = back == got[1] and got[2] or got[1]
  for k, v in pairs(row) do T.eq(back[k], v, k) end
  T.eq(back.run_id, "20260301-000000-cccccc")
  T.eq({ bare.model, bare.status, bare.tag, bare.cost, bare.retries, bare.simulated },
       { "m", "ok", nil, nil, 0, false })
end)

T.test("each call's text: prompt lines, tool calls, parts, embeddings, a cut, the opt-outs", function()
  local db = tmpdir() .. "/texts.db"
  llm.log.use(db)
  local log = require "llm.log"
  local response = require "llm.response"
  local m = { name = "gpt-4o", provider = "sim", simulated = true }
  local function call(tag, body, resp, opts, model)
    opts = opts or {}
    opts.tag = tag
    local c = calls.begin(model or m, body.input and "embed" or "chat", body, opts)
    calls.finish(c, resp and response.new(resp) or nil, resp == nil and llm.error("http", "boom " .. KEY) or nil)
  end
  require("llm.untrusted").add_secret(KEY)
  call("chat", { messages = { { role = "system", content = "Be brief." },
    { role = "user", content = { { type = "text", text = "Look:" }, { type = "image_url" } } },
    { role = "assistant", content = cjson.null, tool_calls = { { id = "c1", type = "function",
      ["function"] = { name = "get_weather", arguments = '{"city":"Oslo"}' } } } },
    { role = "tool", tool_call_id = "c1", content = "sunny" } } },
    { text = "It is sunny.", tool_calls = { { id = "c2", type = "function",
      ["function"] = { name = "book", arguments = "{}" } } } })
  call("embed", { input = { "first", "second" } }, { vectors = { { 1 }, { 2 } } })
  call("big", { messages = { { role = "user", content = ("é"):rep(40000) } } }, { text = "ok" })
  call("error", { messages = { { role = "user", content = "my key " .. KEY } } }, nil)
  call("off", { messages = { { role = "user", content = "not logged" } } }, { text = "no" }, { log_text = false })
  call("model off", { messages = { { role = "user", content = "not logged either" } } }, { text = "no" }, nil,
    { name = "m", provider = "sim", simulated = true, log_text = false })
  log.texts(false)
  call("process off", { messages = { { role = "user", content = "nor this" } } }, { text = "no" })
  log.texts(true)
  T.ok(llm.log.flush())
  local reader = assert(llm.log.reader(db))
  local by = {}
  for _, row in ipairs(reader:search { run = llm.log.run_id(), texts = true }) do by[row.tag] = row end
  T.eq(by.chat.prompt, 'system: Be brief.\nuser: Look:\n[image_url]\nassistant: [tool call get_weather({"city":"Oslo"})]'
    .. "\ntool: sunny")
  T.eq(by.chat.response, "It is sunny.\n[tool call book({})]")
  T.eq(by.embed.prompt, "first\nsecond")
  T.eq(by.embed.response, nil)
  T.ok(#by.big.prompt < 70000 and by.big.prompt:find("bytes not logged]", 1, true), #by.big.prompt)
  T.ok(utf8.len(by.big.prompt), "cut on a character boundary")
  T.eq(by.error.prompt, "user: my key <redacted>")
  T.eq(by.error.error, "boom <redacted>")
  for _, tag in ipairs { "off", "model off", "process off" } do
    T.eq(by[tag].prompt, nil, tag)
    T.eq(by[tag].response, nil, tag)
  end
  -- the search filters
  T.eq(#reader:search { run = llm.log.run_id(), text = "SUNNY" }, 1)
  T.eq(#reader:search { run = llm.log.run_id(), tag = "embed" }, 1)
  T.eq(#reader:search { run = llm.log.run_id(), status = "error" }, 1)
  T.eq(#reader:search { run = llm.log.run_id(), model = "m" }, 1)
  reader:close()
  for _, f in ipairs { db, db .. "-wal" } do T.ok(not read_file(f):find(KEY, 1, true), f) end
end)
