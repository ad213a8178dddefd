-- Hostile servers and odd input (issue 13): what a server may send that
-- it should not, and what llmrun must do about it. Each case runs against
-- the scripted server (tests/c/mock_http.h), most of them in one of its
-- named hostile modes (tests/tools/mockhttp.c, `mockhttp --mode NAME`).
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local script = mock.script

local KEY = "sk-test-HOSTILE-0123456789abcdef"

local function ok_body(text)
  return cjson.encode {
    id = "c1", object = "chat.completion", model = "gpt-4o-mini",
    choices = { { index = 0, message = { role = "assistant", content = text }, finish_reason = "stop" } },
    usage = { prompt_tokens = 12, completion_tokens = 3, total_tokens = 15 },
  }
end

local function reply(status, body, headers)
  local lines = { "status " .. status }
  for _, h in ipairs(headers or {}) do lines[#lines + 1] = "header " .. h end
  lines[#lines + 1] = "header Content-Type: application/json"
  lines[#lines + 1] = "body " .. body
  return table.concat(lines, "\n")
end

local function model_for(srv, extra)
  local spec = { name = "gpt-4o-mini", provider = "openai", base_url = srv.url .. "/v1",
                 api_key = KEY, retry_scale = 0.01 }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return llm.model(spec)
end

-- ---- item 2: no POST reaches the server more often than counted ----------------

-- libcurl re-sends a request on its own when a kept-alive connection dies
-- after the request went out; llmrun must not let it (src/http.c).
T.test("a dropped reused connection: 1 + max_retries sends, all counted, one key", function()
  local db = T.tmpdb()
  llm.log.use(db)
  for _, mode in ipairs { "chat", "stream" } do
    for _, n in ipairs { 0, 2 } do
      local srv <close> = mock.start(script(reply(200, ok_body("warm")), "close"))
      local m = model_for(srv, { max_retries = n })
      T.ok(m:chat "warm-up")   -- leaves a kept-alive connection
      local tag = mode .. n
      local r, err
      if mode == "chat" then
        r, err = m:chat("dropped", { tag = tag })
      else
        r, err = m:stream("dropped", { tag = tag, on_delta = function() end })
      end
      T.eq(r, nil)
      T.eq(err.kind, "transport", tag)
      T.eq(err.retries, n, tag)
      local reqs = srv:requests()
      T.eq(#reqs, 2 + n, tag .. ": requests the server saw")
      for i = 3, #reqs do
        T.eq(reqs[i].headers["idempotency-key"], reqs[2].headers["idempotency-key"])
      end
      T.ok(reqs[2].headers["idempotency-key"] ~= reqs[1].headers["idempotency-key"])
    end
  end
  T.ok(llm.log.flush())
  local reader = assert(llm.log.reader(db))
  local seen = {}
  for _, row in ipairs(reader:calls(reader:find_run(), 0)) do
    if row.tag then seen[row.tag] = row.retries end
  end
  reader:close()
  T.eq(seen, { chat0 = 0, chat2 = 2, stream0 = 0, stream2 = 2 })
  T.remove_db(db)
end)
