-- llm.batch on a Claude model against the simulator's Message Batches
-- (/v1/messages/batches), end to end through llm.batch_anthropic: results
-- in input order with the answers and usage m:chat gets from /v1/messages,
-- exactly the batch price, per-request errors (a simulated failure, a
-- params the Messages API refuses), expiry, cancel, resuming a batch whose
-- script was stopped, the record and llm.batch.list/status/results.
-- test_batch_anthropic.lua checks the client against scripted replies;
-- tests/cli/test_batch_anthropic.sh kills a real process and drives
-- `llmrun batch`.
local T = ...

local NAME = "claude-haiku-4-5"
local m = llm.model(NAME) -- no key: the simulator, Anthropic's wire format

local F = require "sim_batch_fixture"
local questions, stats, fresh = F.questions, F.stats, F.fresh

local store = T.tmpname and T.tmpname() or (os.tmpname() .. ".db")
local function opts(extra)
  local o = { quiet = true, store = store }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

local function latest_record()
  return require("_llm.batchstore").open(store):all(1)[1]
end

-- The id of the newest recorded batch once pred(record) holds (4 s at most).
local function wait_record(pred)
  for _ = 1, 200 do
    llm.sleep(0.02)
    local rec = latest_record()
    if rec and pred(rec) then return rec.batch_id end
  end
end

T.test("a Claude model batches through /v1/messages/batches, not OpenAI's endpoints", function()
  T.eq(m.provider, "sim")
  T.eq(m.format.name, "anthropic")
  fresh()
  local before = llm.sim.stats()
  local res, errs = llm.batch(m, questions(3), opts())
  T.eq(errs.count, 0)
  T.ok(res.batches[1].id:match("^msgbatch_01"), res.batches[1].id)
  T.eq(res.batches[1].status, "ended")
  T.eq(stats().message_batches_created, 1)
  T.eq(stats().message_requests_answered, 3)
  T.eq(stats().batches_created, 0)
  T.eq(stats().files_uploaded, 0)
  T.eq(llm.sim.stats().messages - before.messages, 0, "the requests were not sent one by one")
end)

T.test("results in input order, m:chat's answers and usage, exactly the batch price", function()
  fresh()
  local qs = questions(20)
  qs[7] = { system = "Be brief.", user = "Describe the sea.", max_tokens = 80 }
  qs[12] = { messages = { { role = "user", content = "What is 6 * 7?" } }, max_tokens = 30 }
  local res, errs = llm.batch(m, qs, opts())
  T.eq(errs.count, 0)
  T.eq(res.n, 20)
  T.eq(res.batches[1].requests, 20)
  T.eq(res.batches[1].completed, 20)
  local batch_total, sync_total = 0, 0
  for i, q in ipairs(qs) do
    local r, sync = res[i], assert(m:chat(q))
    T.eq(r.batch.custom_id, "r" .. i)
    T.eq(r.text, sync.text, "request " .. i)
    T.eq(r.usage.prompt_tokens, sync.usage.prompt_tokens, "request " .. i)
    T.eq(r.usage.completion_tokens, sync.usage.completion_tokens, "request " .. i)
    T.eq(r.finish_reason, sync.finish_reason)
    T.ok(r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0)
    T.near(r.cost, llm.pricing.cost(NAME, r.usage, { batch = true }), 1e-15)
    T.near(r.cost, sync.cost / 2, 1e-15)
    batch_total, sync_total = batch_total + r.cost, sync_total + sync.cost
  end
  T.eq(res[1].text, "8")
  T.eq(res[12].text, "42")
  T.near(batch_total / sync_total, 0.5, 1e-12)
end)

T.test("partial failures: simulated failures and refused params are per-request errors", function()
  fresh { batch_fail_rate = 0.3 }
  local qs = questions(40, 400)
  -- the Messages API's own refusal, found when the request runs
  qs[5] = { user = "What is 1 + 1?", max_tokens = 10000000 }
  local res, errs = llm.batch(m, qs, opts())
  T.ok(errs.count > 1 and errs.count < 40, "some failed: " .. errs.count)
  T.eq(errs.count, stats().message_requests_errored)
  T.eq(res.batches[1].failed, errs.count)
  T.eq(res.batches[1].completed, 40 - errs.count)
  T.eq(res[5], nil)
  T.eq(errs[5].kind, "batch")
  T.eq(errs[5].code, "invalid_request_error")
  T.ok(errs[5].message:find("max_tokens: 10000000 > ", 1, true), errs[5].message)
  local simulated = 0
  for i = 1, 40 do
    if errs[i] and i ~= 5 then
      simulated = simulated + 1
      T.eq(res[i], nil)
      T.eq(errs[i].code, "api_error")
      T.eq(errs[i].custom_id, "r" .. i)
      T.ok(errs[i].message:find("simulated batch request failure", 1, true), errs[i].message)
    elseif not errs[i] then
      T.eq(res[i].text, m:chat(qs[i]).text)
    end
  end
  T.ok(simulated > 0)
  -- the same requests fail again (a hash of the seed and the custom_id)
  fresh { batch_fail_rate = 0.3 }
  local _, again = llm.batch(m, qs, opts { resume = false })
  for i = 1, 40 do T.eq(again[i] ~= nil, errs[i] ~= nil, "request " .. i) end
end)

T.test("an expired batch: answers done in time, batch_expired for the rest", function()
  fresh { batch_turnaround_s = 2, batch_expire_s = 0.6 }
  local qs = questions(30, 500)
  local res, errs = llm.batch(m, qs, opts())
  T.eq(res.batches[1].status, "ended")
  T.ok(errs.count > 0, "some expired")
  T.ok(errs.count < 30, "some were answered before it expired: " .. errs.count)
  for i = 1, 30 do
    if errs[i] then
      T.eq(errs[i].kind, "batch")
      T.eq(errs[i].code, "batch_expired")
    else
      T.eq(res[i].text, m:chat(qs[i]).text)
    end
  end
  T.eq(stats().message_requests_not_run, errs.count)
end)

T.test("cancel while it runs: the requests not run get batch_cancelled", function()
  -- answers from 0.4 s to 3.6 s: a cancel about 1 s in finds some done,
  -- with seconds to spare on a loaded machine
  fresh { batch_turnaround_s = 4 }
  local qs = questions(20, 600)
  local task = llm.spawn(function() return llm.batch(m, qs, opts()) end)
  local id = wait_record(function(rec) return rec.requests == 20 and rec.status == "in_progress" end)
  T.ok(id, "the batch started")
  llm.sleep(1.0)
  local st = assert(llm.batch.cancel(id, { store = store }))
  T.eq(st.status, "canceling")
  local ok, res, errs = task:wait()
  T.ok(ok)
  T.eq(res.batches[1].status, "ended")
  T.ok(errs.count > 0 and errs.count < 20, "some ran before the cancel: " .. errs.count)
  for i = 1, 20 do
    if errs[i] then T.eq(errs[i].code, "batch_cancelled") else T.eq(res[i].text, m:chat(qs[i]).text) end
  end
  T.eq(stats().message_batches_canceled, 1)
  T.eq(stats().message_requests_not_run, errs.count)
  -- an ended batch cannot be canceled
  local st2, err = llm.batch.cancel(id, { store = store })
  T.eq(st2, nil)
  T.eq(err.status, 400)
end)

T.test("a script stopped while its batch runs: the rerun resumes it, no second create", function()
  fresh { batch_turnaround_s = 1.5 }
  local qs = questions(12, 700)
  -- the first run stops (its task is abandoned, as a killed script would
  -- leave it) once the batch is recorded; the batch goes on in the simulator
  local first = llm.spawn(function() return llm.batch(m, qs, opts()) end)
  local id = wait_record(function(rec) return rec.requests == 12 and rec.batch_id:match("^msgbatch_") end)
  T.ok(id, "the batch was recorded")
  first:cancel()
  first:wait()
  T.eq(stats().message_batches_created, 1)
  local res, errs = llm.batch(m, qs, opts())
  T.eq(errs.count, 0)
  T.eq(res.batches[1].resumed, true)
  T.eq(res.batches[1].id, id)
  T.eq(stats().message_batches_created, 1, "no second create")
  for i = 1, 12 do T.eq(res[i].text, m:chat(qs[i]).text) end
  -- resume = false pays again
  llm.batch(m, qs, opts { resume = false })
  T.eq(stats().message_batches_created, 2)
end)

T.test("the record and llm.batch.list / status / results on an Anthropic batch", function()
  fresh()
  local qs = questions(5, 800)
  local res = llm.batch(m, qs, opts())
  local id = res.batches[1].id
  local rec = llm.batch.list(5, { store = store })[1]
  T.eq(rec.batch_id, id)
  T.eq(rec.provider, "sim")
  T.eq(rec.status, "ended")
  T.eq(rec.requests, 5)
  local st = assert(llm.batch.status(id:sub(1, 16), { store = store }))
  T.eq(st.status, "ended")
  T.eq(st.completed, 5)
  local out = assert(llm.batch.results(id, { store = store }))
  T.eq(out.malformed, 0)
  for i = 1, 5 do
    local en = out.entries["r" .. i]
    T.eq(en.parsed.text, res[i].text)
    T.eq(en.parsed.usage.prompt_tokens, res[i].usage.prompt_tokens)
  end
end)

T.test("the simulator refuses malformed batches as the API does", function()
  fresh()
  local http = require "_llm.http"
  local base = m.cfg.base_url .. "/v1/messages/batches"
  local function post(body, headers)
    local h = { "Content-Type: application/json", "x-api-key: k" }
    for _, x in ipairs(headers or { "anthropic-version: 2023-06-01" }) do h[#h + 1] = x end
    local r = assert(http.request { url = base, method = "POST", body = body, headers = h })
    local doc = require("cjson").decode(r.body)
    return r.status, doc.error and doc.error.message, doc
  end
  local st, msg = post('{"requests":[]}')
  T.eq(st, 400)
  T.eq(msg, "requests: List should have at least 1 item after validation, not 0")
  st, msg = post('{"requests":[{"custom_id":"a b","params":{}}]}')
  T.eq(msg, "requests.0.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'")
  st, msg = post('{"requests":[{"custom_id":"a","params":{}},{"custom_id":"a","params":{}}]}')
  T.eq(st, 400)
  T.ok(msg:find("custom_id 'a' appears more than once", 1, true), msg)
  st, msg = post('{"requests":[{"custom_id":"a"}]}')
  T.eq(msg, "requests.0.params: Field required")
  st, msg = post('{"requests":[{"custom_id":"a","params":{}}],"model":"x"}')
  T.eq(msg, "model: Extra inputs are not permitted")
  st, msg = post('{"requests":[{"custom_id":"a","params":{}}]}', {})
  T.eq(st, 400)
  T.eq(msg, "anthropic-version: header is required")
  local _, _, doc = post('{"requests":[{"custom_id":"a","params":{}}]}',
    { "anthropic-version: 2023-06-01", "x-sim-batch-fail-rate: 2" })
  T.eq(doc.error.type, "invalid_request_error")
  T.eq(stats().message_batches_created, 0)
  -- unknown ids and listing
  local r = assert(http.request { url = base .. "/msgbatch_01nope", headers = { "anthropic-version: 2023-06-01" } })
  T.eq(r.status, 404)
  T.eq(require("cjson").decode(r.body).error.type, "not_found_error")
end)

T.test("list pages newest first with after_id / before_id; delete only once ended", function()
  fresh { batch_turnaround_s = 0 }
  local cjson, http = require "cjson", require "_llm.http"
  local base = m.cfg.base_url .. "/v1/messages/batches"
  local H = { "anthropic-version: 2023-06-01", "x-api-key: k" }
  local ids = {}
  for i = 1, 5 do ids[i] = llm.batch(m, { "What is " .. i .. " + 1?" }, opts { store = false }).batches[1].id end
  local function get(q) return cjson.decode(assert(http.request { url = base .. q, headers = H }).body) end
  local p = get("?limit=2")
  T.eq({ p.data[1].id, p.data[2].id }, { ids[5], ids[4] })
  T.eq({ p.first_id, p.last_id, p.has_more }, { ids[5], ids[4], true })
  p = get("?limit=2&after_id=" .. p.last_id)
  T.eq({ p.data[1].id, p.data[2].id, p.has_more }, { ids[3], ids[2], true })
  p = get("?limit=2&after_id=" .. p.last_id)
  T.eq({ #p.data, p.data[1].id, p.has_more }, { 1, ids[1], false })
  p = get("?limit=2&before_id=" .. ids[2])
  T.eq({ p.data[1].id, p.data[2].id, p.has_more }, { ids[4], ids[3], true })
  T.eq(get("?limit=0").error.message, "limit: Input should be greater than or equal to 1")
  local r = assert(http.request { url = base .. "/" .. ids[1], method = "DELETE", headers = H })
  T.eq(cjson.decode(r.body), { id = ids[1], type = "message_batch_deleted" })
  T.eq(#get("?limit=100").data, 4)
  -- a batch still running is not deleted
  llm.sim.configure { batch_turnaround_s = 30 }
  local created = cjson.decode(assert(http.request { url = base, method = "POST", headers =
    { H[1], H[2], "Content-Type: application/json" }, body = cjson.encode { requests = {
      { custom_id = "x", params = { model = NAME, max_tokens = 10, messages = { { role = "user", content = "hi" } } } } } } }).body)
  T.eq(created.processing_status, "in_progress")
  r = assert(http.request { url = base .. "/" .. created.id, method = "DELETE", headers = H })
  T.eq(r.status, 400)
  r = assert(http.request { url = base .. "/" .. created.id .. "/results", headers = H })
  T.eq(r.status, 400)
end)
