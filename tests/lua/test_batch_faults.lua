-- llm.batch when things go wrong: a 429 storm while it polls, odd
-- retry-after values, a batch that fails validation, malformed lines in
-- the output file, a create whose answer is lost (no second batch), and
-- the simulator's own checks of batch input files.
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local http = require "_llm.http"

-- retries waited for scaled down (the server's delays too), so a delay
-- that is wrongly honoured still shows as a long wait
local m = llm.model { "gpt-4o-mini", retry_scale = 0.01 }

local function questions(n, offset)
  local out = {}
  for i = 1, n do out[i] = ("What is %d + %d?"):format(i + (offset or 0), 3) end
  return out
end

local function fresh(cfg)
  llm.sim.reset()
  local c = { batch_turnaround_s = 0.2, batch_fail_rate = 0, batch_expire_s = 86400, faults = false,
              retry_after = "1", profile = "zero" }
  for k, v in pairs(cfg or {}) do c[k] = v end
  llm.sim.configure(c)
end

local function stats() return llm.sim.stats() end

local Q = { quiet = true, store = false }

-- Waits (bounded) until the simulator has created n batches.
local function wait_created(n)
  for _ = 1, 300 do
    if stats().batch.batches_created >= n then return true end
    llm.sleep(0.01)
  end
  return false
end

T.test("a 429 storm while polling: the batch is followed to its end, submitted once", function()
  fresh { batch_turnaround_s = 1.5 }
  local task = llm.spawn(function() return llm.batch(m, questions(12), Q) end)
  T.ok(wait_created(1), "submitted")
  -- every request to the simulator gets 429 for a while
  llm.sim.configure { faults = { ["429"] = 1 } }
  llm.sleep(0.6)
  llm.sim.configure { faults = false }
  local ok, res, errs = task:wait()
  T.ok(ok, tostring(res))
  T.eq(errs.count, 0)
  for i = 1, 12 do T.ok(res[i] and res[i].text ~= "") end
  local st = stats()
  T.ok((st.faults["429"] or 0) >= 3, "polls met the storm: " .. tostring(st.faults["429"]))
  T.eq(st.batch.batches_created, 1)
end)

T.test("odd retry-after values during the storm do not stall or break polling", function()
  for _, odd in ipairs { "soon", "-5", "99999", "Wed, 21 Oct 2015 07:28:00 GMT", "" } do
    fresh { batch_turnaround_s = 0.6, retry_after = odd }
    local t0 = llm.now()
    local task = llm.spawn(function() return llm.batch(m, questions(3), Q) end)
    T.ok(wait_created(1))
    llm.sim.configure { faults = { ["429"] = 1 } }
    llm.sleep(0.3)
    llm.sim.configure { faults = false }
    local ok, res, errs = task:wait()
    T.ok(ok, tostring(res))
    T.eq(errs.count, 0, "retry-after '" .. odd .. "'")
    T.ok(llm.now() - t0 < 10, "no long wait for retry-after '" .. odd .. "'")
  end
end)

T.test("per-request simulator knobs with odd values are refused (400)", function()
  fresh()
  local base = llm.sim.ensure()
  for _, v in ipairs { "abc", "-1", "1e99", "nan", "2s" } do
    local r = assert(http.request { method = "POST", url = base .. "/batches",
      headers = { "Content-Type: application/json", "x-sim-batch-turnaround-s: " .. v },
      body = '{"input_file_id":"file-x","endpoint":"/v1/chat/completions","completion_window":"24h"}' })
    T.eq(r.status, 400, "value '" .. v .. "'")
    T.ok(r.body:find("invalid_sim_knob", 1, true), r.body)
  end
end)

-- ---- the simulator's checks of input files ---------------------------------------------------

local function upload(base, data, filename, purpose)
  local b = "bnd12345"
  local body = "--" .. b .. "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n"
    .. (purpose or "batch") .. "\r\n--" .. b .. "\r\nContent-Disposition: form-data; name=\"file\"; "
    .. "filename=\"" .. (filename or "in.jsonl") .. "\"\r\n\r\n" .. data .. "\r\n--" .. b .. "--\r\n"
  local r = assert(http.request { method = "POST", url = base .. "/files",
    headers = { "Content-Type: multipart/form-data; boundary=" .. b }, body = body })
  return r.status, cjson.decode(r.body)
end

local function create(base, file_id)
  local r = assert(http.request { method = "POST", url = base .. "/batches",
    headers = { "Content-Type: application/json" },
    body = cjson.encode { input_file_id = file_id, endpoint = "/v1/chat/completions", completion_window = "24h" } })
  return r.status, cjson.decode(r.body)
end

local function line(cid, model, url)
  return cjson.encode { custom_id = cid, method = "POST", url = url or "/v1/chat/completions",
    body = { model = model or "gpt-4o-mini", messages = { { role = "user", content = "hi" } } } }
end

T.test("the simulator fails invalid input files with the documented codes", function()
  fresh { batch_turnaround_s = 0 }
  local base = llm.sim.ensure()
  local cases = {
    { line("a") .. "\n{not json\n", "invalid_json_line", 2 },
    { line("a") .. "\n" .. line("a") .. "\n", "duplicate_custom_id", 2 },
    { line("a") .. "\n" .. line("b", "gpt-4o") .. "\n", "model_mismatch", 2 },
    { line("a", nil, "/v1/embeddings") .. "\n", "url_mismatch", 1 },
    { "\n\n", "empty_file" },
  }
  for _, c in ipairs(cases) do
    local s, f = upload(base, c[1])
    T.eq(s, 200)
    local s2, b = create(base, f.id)
    T.eq(s2, 200)
    T.eq(b.status, "failed", c[2])
    T.eq(b.errors.data[1].code, c[2])
    if c[3] then T.eq(b.errors.data[1].line, c[3], c[2]) end
    T.eq(b.failed_at ~= cjson.null, true)
  end
  -- uploads: the purpose and the .jsonl name are checked
  T.eq((upload(base, line("a"), "in.txt")), 400)
  T.eq((upload(base, line("a"), "in.jsonl", "nonsense")), 400)
  -- creating needs a known file
  T.eq((create(base, "file-nope")), 404)
end)

-- ---- against the scripted server: shapes a real provider may send ----------------------------

local function reply(status, body)
  return "status " .. status .. "\nheader Content-Type: application/json\nbody " .. body
end

local function batch_obj(status, extra)
  local b = { id = "batch_abc", object = "batch", endpoint = "/v1/chat/completions", status = status,
    input_file_id = "file-in", completion_window = "24h", created_at = 1,
    request_counts = { total = 3, completed = 0, failed = 0 } }
  for k, v in pairs(extra or {}) do b[k] = v end
  return cjson.encode(b)
end

local function completion(text)
  return { id = "chatcmpl-1", object = "chat.completion", model = "gpt-4o-mini",
    choices = { { index = 0, message = { role = "assistant", content = text }, finish_reason = "stop" } },
    usage = { prompt_tokens = 10, completion_tokens = 2, total_tokens = 12 } }
end

local function mock_model(srv)
  return llm.model { name = "gpt-4o-mini", provider = "openai", base_url = srv.url .. "/v1",
    api_key = "sk-test", retry_scale = 0.01 }
end

local MOCK = { quiet = true, store = false, poll = { min = 0.01, max = 0.02 } }

T.test("malformed output lines: the readable ones are answers, the rest say why they are missing", function()
  local out = table.concat({
    cjson.encode { id = "x1", custom_id = "r1", response = { status_code = 200, request_id = "req_1",
      body = completion("first") }, error = cjson.null },
    "{this is not json",
    cjson.encode { id = "x3", response = { status_code = 200, body = completion("who am I") } },
    "",
  }, "\n")
  local srv = mock.start(mock.script(
    reply(200, '{"object":"list","data":[]}'),                    -- a batch of ours already?
    reply(200, '{"id":"file-in","object":"file","purpose":"batch"}'),
    reply(200, batch_obj("validating")),
    reply(200, batch_obj("completed", { output_file_id = "file-out",
      request_counts = { total = 3, completed = 3, failed = 0 } })),
    "status 200\nheader Content-Type: application/octet-stream\nbody " .. out:gsub("\n", "\\n")))
  local res, errs = llm.batch(mock_model(srv), { "a", "b", "c" }, MOCK)
  T.eq(res[1] and res[1].text, "first")
  T.eq(res[1].request_id, "req_1")
  T.eq(errs.count, 2)
  for i = 2, 3 do
    T.eq(errs[i].kind, "batch")
    T.eq(errs[i].code, "missing")
    T.ok(errs[i].message:find("2 output lines could not be read", 1, true), errs[i].message)
  end
  T.eq(res.batches[1].malformed_lines, 2)
  -- what was sent: the JSONL upload, then the batch with our hash
  local reqs = srv:requests()
  T.eq(reqs[2].path, "/v1/files")
  T.ok(reqs[2].headers["content-type"]:find("multipart/form-data; boundary=", 1, true))
  T.ok(reqs[2].body:find('"custom_id":"r3","method":"POST","url":"/v1/chat/completions"', 1, true))
  T.eq(reqs[2].headers["authorization"], "Bearer sk-test")
  local create = cjson.decode(reqs[3].body)
  T.eq(create.endpoint, "/v1/chat/completions")
  T.eq(create.completion_window, "24h")
  T.eq(#create.metadata.llmrun_hash, 64)
  srv:stop()
end)

T.test("a batch that fails validation: every request gets its first error", function()
  local failed = batch_obj("failed", { errors = { object = "list", data = {
    { code = "invalid_json_line", message = "This line is not parseable as valid JSON.", line = 2 } } } })
  local srv = mock.start(mock.script(
    reply(200, '{"object":"list","data":[]}'),
    reply(200, '{"id":"file-in","object":"file","purpose":"batch"}'),
    reply(200, batch_obj("validating")),
    reply(200, failed)))
  local res, errs = llm.batch(mock_model(srv), { "a", "b" }, MOCK)
  T.eq(errs.count, 2)
  T.eq(errs[1].kind, "batch")
  T.eq(errs[1].code, "invalid_json_line")
  T.ok(errs[2].message:find("input line 2", 1, true), errs[2].message)
  T.eq(res[1], nil)
  T.eq(res.batches[1].status, "failed")
  srv:stop()
end)

T.test("a create whose answer is lost is found by its hash, not made twice", function()
  -- a fake provider in place of the HTTP layer: the create fails with a
  -- 500 although the batch was made; the lookup that follows finds it by
  -- the hash in its metadata
  local wire = require "llm.batch_wire"
  local json0, raw0 = wire.json, wire.raw
  local made, creates = nil, 0
  wire.json = function(_, method, url, body)
    if method == "GET" and url:find("/batches?limit", 1, true) then
      return { object = "list", data = made and { made } or {} }
    elseif method == "POST" and url:find("/files$") then
      return { id = "file-in", object = "file" }
    elseif method == "POST" and url:find("/batches$") then
      creates = creates + 1
      local req = cjson.decode(body)
      made = cjson.decode(batch_obj("in_progress", { metadata = req.metadata }))
      return nil, llm.error("http", "boom", { status = 500 })
    elseif method == "GET" and url:find("/batches/batch_abc$") then
      return cjson.decode(batch_obj("completed", { output_file_id = "file-out" }))
    end
    error("unexpected " .. method .. " " .. url)
  end
  wire.raw = function(_, method, url)
    assert(method == "GET" and url:find("/files/file%-out/content$"), url)
    return { status = 200, body = cjson.encode { custom_id = "r1", response = { status_code = 200,
      body = completion("found") } } }
  end
  local ok, res, errs = pcall(llm.batch, llm.model { name = "gpt-4o-mini", provider = "openai",
    base_url = "http://127.0.0.1:9/v1", api_key = "sk-x", retry_scale = 0.01 }, { "only" }, MOCK)
  wire.json, wire.raw = json0, raw0
  T.ok(ok, tostring(res))
  T.eq(errs.count, 0, tostring(errs[1]))
  T.eq(res[1].text, "found")
  T.eq(res[1].batch.id, "batch_abc")
  T.eq(creates, 1, "one create, not retried after the lookup found it")
end)

T.test("odd values in the batch object are read as nothing, not raised", function()
  local wire = require "llm.batch_wire"
  local json0, raw0 = wire.json, wire.raw
  local polls = 0
  wire.json = function(_, method, url)
    if method == "GET" and url:find("/batches?limit", 1, true) then return { data = "none" } end
    if method == "POST" and url:find("/files$") then return { id = "file-in" } end
    if method == "POST" then return cjson.decode(batch_obj("validating")) end
    polls = polls + 1
    if polls == 1 then
      return { id = "batch_abc", status = 42, request_counts = 7, output_file_id = {} }
    elseif polls == 2 then
      return { id = "batch_abc", status = "in_progress", request_counts = { total = "3", completed = 1.5 } }
    end
    return cjson.decode(batch_obj("completed", { output_file_id = "file-out" }))
  end
  wire.raw = function()
    return { status = 200, body = cjson.encode { custom_id = "r1", response = { status_code = 200,
      body = completion("fine") } } }
  end
  local ok, res, errs = pcall(llm.batch, llm.model { name = "gpt-4o-mini", provider = "openai",
    base_url = "http://127.0.0.1:9/v1", api_key = "sk-x" }, { "q" }, MOCK)
  wire.json, wire.raw = json0, raw0
  T.ok(ok, tostring(res))
  T.eq(errs.count, 0)
  T.eq(res[1].text, "fine")
  T.eq(polls, 3)
end)
