-- llm.batch against the simulator's Batch API: results in input order and
-- the same answers as m:chat, batch prices, the call log, splitting under
-- the limits, resuming instead of paying twice, partial failures, expiry,
-- cancel, a batch the provider forgot, misuse.
local T = ...
local calls = require "llm.calls"

local m = llm.model "gpt-4o-mini"

-- every test starts from an empty simulator with quick batches (fresh)
local F = require "sim_batch_fixture"
local questions, stats, fresh = F.questions, F.stats, F.fresh

local store = T.tmpname and T.tmpname() or (os.tmpname() .. ".db")
local Q = { quiet = true, store = store }
local function opts(extra)
  local o = {}
  for k, v in pairs(Q) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

T.test("results in input order, the answers m:chat gives, at batch prices", function()
  fresh()
  local qs = questions(25)
  local res, errs = llm.batch(m, qs, opts())
  T.eq(errs.count, 0)
  T.eq(res.n, 25)
  T.eq(#res.batches, 1)
  T.eq(res.batches[1].requests, 25)
  T.eq(res.batches[1].status, "completed")
  T.eq(res.batches[1].resumed, false)
  for i, q in ipairs(qs) do
    local r = res[i]
    local sync = m:chat(q)
    T.eq(r.text, sync.text, "request " .. i)
    T.eq(r.usage.prompt_tokens, sync.usage.prompt_tokens)
    T.eq(r.usage.completion_tokens, sync.usage.completion_tokens)
    T.eq(r.batch.custom_id, "r" .. i)
    T.eq(r.batch.id, res.batches[1].id)
    T.eq(r.simulated, true)
    T.ok(r.latency_ms > 0)
    -- exactly the Batch API price: half of gpt-4o-mini's, from the table
    T.near(r.cost, llm.pricing.cost("gpt-4o-mini", r.usage, { batch = true }), 1e-15)
    T.near(r.cost, sync.cost / 2, 1e-15)
  end
  T.eq(stats().batches_created, 1)
  T.eq(stats().lines_answered, 25)
end)

T.test("every request is a call of the call log, kind batch, with tag, case and cost", function()
  fresh()
  local db = T.tmpdir() .. "/runs.db"
  llm.log.use(db)
  local res = llm.batch(m, questions(4), opts { tag = "nightly", case = function(i) return "c" .. i end })
  T.ok(llm.log.flush())
  local reader = assert(llm.log.reader(db))
  local rows = reader:calls(llm.log.run_id(), 0)
  reader:close()
  T.eq(#rows, 4)
  local seen = {}
  for _, row in ipairs(rows) do
    T.eq(row.kind, "batch")
    T.eq(row.tag, "nightly")
    T.eq(row.status, "ok")
    seen[row.case] = row
  end
  for i = 1, 4 do
    T.ok(seen["c" .. i], "case c" .. i)
    T.near(seen["c" .. i].cost, res[i].cost, 1e-12)
  end
end)

T.test("split under max_requests and max_bytes, in order; a request too large fails alone", function()
  fresh()
  local qs = questions(10)
  local res, errs = llm.batch(m, qs, opts { max_requests = 4 })
  T.eq(errs.count, 0)
  T.eq(#res.batches, 3)
  T.eq({ res.batches[1].requests, res.batches[2].requests, res.batches[3].requests }, { 4, 4, 2 })
  for i, q in ipairs(qs) do T.eq(res[i].text, m:chat(q).text) end
  T.eq(stats().batches_created, 3)
  -- bytes: each line is ~170 bytes here; 400 bytes hold two
  fresh()
  qs[5] = "Tell me everything. " .. ("word "):rep(200)
  res, errs = llm.batch(m, qs, opts { max_bytes = 400 })
  T.eq(errs.count, 1)
  T.eq(errs[5].kind, "batch")
  T.eq(errs[5].code, "too_large")
  T.eq(res[5], nil)
  for i, q in ipairs(qs) do
    if i ~= 5 then T.eq(res[i].text, m:chat(q).text, "request " .. i) end
  end
  T.ok(#res.batches >= 5, "split by bytes")
end)

T.test("a rerun resumes the recorded batch; resume = false submits again", function()
  fresh()
  local qs = questions(6, 100)
  local a = llm.batch(m, qs, opts())
  local b = llm.batch(m, qs, opts())
  T.eq(stats().batches_created, 1, "no second submission")
  T.eq(b.batches[1].resumed, true)
  T.eq(b.batches[1].id, a.batches[1].id)
  for i = 1, 6 do T.eq(b[i].text, a[i].text) end
  local c = llm.batch(m, qs, opts { resume = false })
  T.eq(stats().batches_created, 2)
  T.eq(c.batches[1].resumed, false)
  -- other requests are another batch
  llm.batch(m, questions(6, 200), opts())
  T.eq(stats().batches_created, 3)
  -- the record: newest first, with status
  local recs = require("_llm.batchstore").open(store):all(10)
  T.eq(recs[1].status, "completed")
  T.eq(recs[1].requests, 6)
  T.eq(recs[1].provider, "sim")
  T.ok(recs[1].input_file and recs[1].input_file:find("^file%-"), "the input file is recorded")
end)

T.test("a recorded batch the provider no longer knows is submitted again", function()
  fresh()
  local qs = questions(3, 300)
  llm.batch(m, qs, opts())
  fresh() -- the simulator forgets its batches
  local res, errs = llm.batch(m, qs, opts())
  T.eq(errs.count, 0)
  T.eq(stats().batches_created, 1)
  T.eq(res.batches[1].resumed, false)
end)

T.test("partial failures: failed lines come back as errors, the others as answers", function()
  fresh { batch_fail_rate = 0.3 }
  local qs = questions(40, 400)
  local res, errs = llm.batch(m, qs, opts())
  T.ok(errs.count > 0 and errs.count < 40, "some failed: " .. errs.count)
  T.eq(errs.count, stats().lines_failed)
  T.eq(res.batches[1].failed, errs.count)
  for i = 1, 40 do
    if errs[i] then
      T.eq(res[i], nil)
      T.eq(errs[i].kind, "http")
      T.eq(errs[i].status, 500)
      T.eq(errs[i].custom_id, "r" .. i)
      T.ok(errs[i].message:find("simulated batch line failure", 1, true))
    else
      T.ok(res[i].text ~= "")
    end
  end
end)

T.test("an expired batch: answers done in time, batch_expired for the rest", function()
  fresh { batch_turnaround_s = 2, batch_expire_s = 0.6 }
  local res, errs = llm.batch(m, questions(30, 500), opts())
  T.eq(res.batches[1].status, "expired")
  T.ok(errs.count > 0, "some expired")
  T.ok(errs.count < 30, "some were answered before the window closed: " .. errs.count)
  for i = 1, 30 do
    if errs[i] then
      T.eq(errs[i].kind, "batch")
      T.eq(errs[i].code, "batch_expired")
    else
      T.ok(res[i].text ~= "")
    end
  end
  T.eq(stats().lines_expired, errs.count)
end)

T.test("cancel while it runs: cancelled requests get batch_cancelled", function()
  fresh { batch_turnaround_s = 3 }
  local qs = questions(20, 600)
  local task = llm.spawn(function() return llm.batch(m, qs, opts()) end)
  local id
  for _ = 1, 200 do
    llm.sleep(0.02)
    local recs = require("_llm.batchstore").open(store):all(1)
    if recs[1] and recs[1].status == "in_progress" then id = recs[1].batch_id break end
  end
  T.ok(id, "the batch started")
  llm.sleep(0.5)
  local st = assert(llm.batch.cancel(id, { store = store }))
  T.ok(st.status == "cancelling" or st.status == "cancelled", st.status)
  local ok, res, errs = task:wait()
  T.ok(ok)
  T.eq(res.batches[1].status, "cancelled")
  T.ok(errs.count > 0 and errs.count <= 20)
  for i = 1, 20 do
    if errs[i] then T.eq(errs[i].code, "batch_cancelled") end
  end
  T.eq(stats().batches_cancelled, 1)
end)

T.test("cancelled while validating: every request shares the batch's fate", function()
  fresh { batch_turnaround_s = 8 }
  local task = llm.spawn(function() return llm.batch(m, questions(4, 650), opts()) end)
  local id
  for _ = 1, 200 do
    llm.sleep(0.01)
    local recs = require("_llm.batchstore").open(store):all(1)
    if recs[1] and recs[1].status == "validating" and recs[1].requests == 4 then id = recs[1].batch_id break end
  end
  T.ok(id, "the batch was created")
  T.eq(assert(llm.batch.cancel(id, { store = store })).status, "cancelling")
  local _, res, errs = task:wait()
  T.eq(res.batches[1].status, "cancelled")
  T.eq(errs.count, 4)
  for i = 1, 4 do T.eq(errs[i].code, "batch_cancelled") end
end)

T.test("budgets apply per request, before it is sent", function()
  fresh()
  local b <close> = llm.budget { usd = 0 }
  local res, errs = llm.batch(m, questions(3, 700), opts())
  T.eq(errs.count, 3)
  T.eq(errs[1].kind, "budget")
  T.eq(res[1], nil)
  T.eq(stats().batches_created, 0, "nothing was sent")
end)

T.test("misuse raises; an empty list sends nothing", function()
  T.err(function() llm.batch(m, questions(2), { bogus = 1 }) end, "unknown option 'bogus'")
  T.err(function() llm.batch(m, { "fine", 42 }) end, "requests[2]")
  T.err(function() llm.batch(m, "not a list") end, "list of requests")
  T.err(function() llm.batch(42, {}) end, "a model or a model name")
  T.err(function() llm.batch(m, { "hi" }, { poll = { every = 1 } }) end, "poll =")
  fresh()
  local res, errs = llm.batch(m, {}, opts())
  T.eq(res.n, 0)
  T.eq(errs.count, 0)
  T.eq(stats().files_uploaded, 0)
end)

T.test("a provider that cannot be reached: every request gets the error", function()
  local closed = llm.model { name = "gpt-4o-mini", provider = "openai", api_key = "sk-x",
    base_url = "http://127.0.0.1:9/v1", max_retries = 0 }
  local res, errs = llm.batch(closed, questions(2), opts { max_retries = 0 })
  T.eq(errs.count, 2)
  T.eq(errs[1].kind, "transport")
  T.eq(res[1], nil)
end)

T.test("an abandoned batch ends its calls as cancelled", function()
  fresh { batch_turnaround_s = 5 }
  local finished = {}
  local function watch(call, _, err) if call.batch then finished[#finished + 1] = err and err.kind end end
  calls.on_finish(watch)
  local task = llm.spawn(function() return llm.batch(m, questions(3, 800), opts()) end)
  llm.sleep(0.3)
  task:cancel()
  task:wait()
  calls.off(watch)
  T.eq(finished, { "cancelled", "cancelled", "cancelled" })
end)
