-- llm.batch on Anthropic's Message Batches API, against the scripted
-- server with responses in the API reference's shapes: the request sent,
-- polling until "ended", every kind of result, Batch API prices, cancel
-- and list. test_batch_anthropic_sim.lua runs the same client against the
-- simulator's Message Batches.
local T = ...
local mock = require "mock"
local cjson = require "cjson"

local KEY = "sk-ant-test-SECRET"

local function reply(status, body)
  return "status " .. status .. "\nheader Content-Type: application/json\nbody " .. body
end

local function batch(status, counts, extra)
  local b = { id = "msgbatch_01", type = "message_batch", processing_status = status,
    request_counts = counts or { processing = 4, succeeded = 0, errored = 0, canceled = 0, expired = 0 },
    created_at = "2026-01-01T00:00:00Z", expires_at = "2026-01-02T00:00:00Z",
    ended_at = cjson.null, cancel_initiated_at = cjson.null, archived_at = cjson.null,
    results_url = cjson.null }
  for k, v in pairs(extra or {}) do b[k] = v end
  return cjson.encode(b)
end

local function message(text)
  return { id = "msg_" .. text, type = "message", role = "assistant", model = "claude-haiku-4-5-20251001",
    content = { { type = "text", text = text } }, stop_reason = "end_turn",
    usage = { input_tokens = 100, cache_creation_input_tokens = 0, cache_read_input_tokens = 0,
      output_tokens = 20 } }
end

local function model_for(srv)
  return llm.model { name = "claude-haiku-4-5", provider = "anthropic", base_url = srv.url,
    api_key = KEY, retry_scale = 0.01 }
end

local OPTS = { quiet = true, store = false, poll = { min = 0.01, max = 0.02 } }

T.test("a batch from request to results: every result kind, in input order, at batch prices", function()
  local results = table.concat({
    -- in any order, as the API says
    cjson.encode { custom_id = "r3", result = { type = "canceled" } },
    cjson.encode { custom_id = "r1", result = { type = "succeeded", message = message("one") } },
    cjson.encode { custom_id = "r4", result = { type = "expired" } },
    cjson.encode { custom_id = "r2", result = { type = "errored", error = { type = "error",
      error = { type = "invalid_request_error", message = "max_tokens: too large" } } } },
    cjson.encode { custom_id = "r5", result = { type = "succeeded", message = message("five") } },
  }, "\\n")
  local ended = batch("ended", { processing = 0, succeeded = 2, errored = 1, canceled = 1, expired = 1 },
    { results_url = "/v1/messages/batches/msgbatch_01/results", ended_at = "2026-01-01T01:00:00Z" })
  local srv = mock.start(mock.script(
    reply(200, batch("in_progress")),
    reply(200, batch("in_progress", { processing = 2, succeeded = 3, errored = 0, canceled = 0, expired = 0 })),
    reply(200, ended),
    "status 200\nheader Content-Type: application/binary\nbody " .. results))
  local reqs = { "hi", { system = "Be brief.", user = "hello", max_tokens = 50 }, "c", "d", "e" }
  local res, errs = llm.batch(model_for(srv), reqs, OPTS)
  T.eq(res[1].text, "one")
  T.eq(res[5].text, "five")
  T.eq(res[1].batch.id, "msgbatch_01")
  T.eq(res[1].batch.custom_id, "r1")
  T.eq(res[1].usage.prompt_tokens, 100)
  T.eq(res[1].finish_reason, "stop")
  -- Anthropic's batch price: half of the model's
  T.near(res[1].cost, llm.pricing.cost("claude-haiku-4-5", res[1].usage, { batch = true }), 1e-15)
  T.near(res[1].cost, llm.pricing.cost("claude-haiku-4-5", res[1].usage) / 2, 1e-15)
  T.eq(errs.count, 3)
  T.eq(errs[2].kind, "batch")
  T.eq(errs[2].code, "invalid_request_error")
  T.eq(errs[2].message, "max_tokens: too large")
  T.eq(errs[3].code, "batch_cancelled")
  T.eq(errs[4].code, "batch_expired")
  T.eq(res.batches[1].status, "ended")
  T.eq(res.batches[1].completed, 2)
  T.eq(res.batches[1].failed, 3)
  -- the request: one POST with every request as {custom_id, params}
  local sent = srv:requests()
  T.eq(sent[1].method, "POST")
  T.eq(sent[1].path, "/v1/messages/batches")
  T.eq(sent[1].headers["x-api-key"], KEY)
  T.eq(sent[1].headers["anthropic-version"], "2023-06-01")
  local body = cjson.decode(sent[1].body)
  T.eq(#body.requests, 5)
  T.eq(body.requests[2].custom_id, "r2")
  T.eq(body.requests[2].params.system, "Be brief.")
  T.eq(body.requests[2].params.messages, { { role = "user", content = "hello" } })
  T.eq(body.requests[2].params.max_tokens, 50)
  T.eq(body.requests[1].params.max_tokens, 4096)
  T.eq(body.requests[1].params.model, "claude-haiku-4-5")
  T.eq(sent[2].path, "/v1/messages/batches/msgbatch_01")
  T.eq(sent[4].path, "/v1/messages/batches/msgbatch_01/results")
  srv:stop()
end)

T.test("more requests than a batch may hold go out as several batches", function()
  -- a fake provider in place of the HTTP layer, answering by path, since
  -- the batches are followed at the same time
  local wire = require "llm.batch_wire"
  local json0, raw0 = wire.json, wire.raw
  local made = {}
  wire.json = function(_, method, url, body)
    if method == "POST" and url:find("/v1/messages/batches$") then
      local reqs = cjson.decode(body).requests
      local id = "b" .. (#made + 1)
      made[#made + 1] = reqs
      made[id] = reqs
      return cjson.decode(batch("in_progress", nil, { id = id }))
    end
    local id = url:match("/v1/messages/batches/(b%d+)$")
    return cjson.decode(batch("ended", { processing = 0, succeeded = #made[id], errored = 0, canceled = 0,
      expired = 0 }, { id = id, results_url = "https://api.example/r/" .. id }))
  end
  wire.raw = function(_, _, url)
    local lines = {}
    for _, r in ipairs(made[url:match("/r/(b%d+)$")]) do
      lines[#lines + 1] = cjson.encode { custom_id = r.custom_id, result = { type = "succeeded",
        message = message(r.params.messages[1].content) } }
    end
    return { status = 200, body = table.concat(lines, "\n") }
  end
  local ok, res, errs = pcall(llm.batch, llm.model { name = "claude-haiku-4-5",
    provider = "anthropic", base_url = "http://127.0.0.1:9", api_key = KEY },
    { "a", "b", "c", "d", "e" }, { quiet = true, store = false, max_requests = 2, poll = { min = 0.01 } })
  wire.json, wire.raw = json0, raw0
  T.ok(ok, tostring(res))
  T.eq(errs.count, 0)
  T.eq(#made, 3)
  T.eq({ #made[1], #made[2], #made[3] }, { 2, 2, 1 })
  for i, want in ipairs { "a", "b", "c", "d", "e" } do T.eq(res[i].text, want) end
  T.eq(#res.batches, 3)
end)

T.test("cancel and list through the recorded batch", function()
  local store = os.tmpname() .. ".db"
  local srv = mock.start(mock.script(
    reply(200, batch("in_progress")),
    reply(200, batch("ended", { processing = 0, succeeded = 0, errored = 0, canceled = 1, expired = 0 },
      { results_url = "/x" })),
    "status 200\nbody " .. cjson.encode { custom_id = "r1", result = { type = "canceled" } },
    reply(200, batch("canceling")),
    reply(200, cjson.encode { data = { cjson.decode(batch("ended")) }, has_more = false })))
  local res, errs = llm.batch(model_for(srv), { "x" }, { quiet = true, store = store, poll = { min = 0.01 } })
  T.eq(errs[1].code, "batch_cancelled")
  T.eq(res[1], nil)
  local rec = llm.batch.list(5, { store = store })[1]
  T.eq(rec.batch_id, "msgbatch_01")
  T.eq(rec.provider, "anthropic")
  T.eq(rec.status, "ended")
  -- the recorded base URL reaches the server again
  local st = assert(llm.batch.cancel("msgbatch", { store = store }))
  T.eq(st.status, "canceling")
  local sent = srv:requests()
  T.eq(sent[4].method, "POST")
  T.eq(sent[4].path, "/v1/messages/batches/msgbatch_01/cancel")
  T.eq(sent[4].headers["x-api-key"], nil, "the key comes from the environment, not the record")
  srv:stop()
  for _, s in ipairs { "", "-wal", "-shm" } do os.remove(store .. s) end
end)
