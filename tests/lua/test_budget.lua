-- llm.budget: refusals with err.kind == "budget", per-model caps, unknown
-- prices, closing and replacing, and the cap under 64 calls in flight.
-- Prices (USD per token): gpt-4o in 2.5e-6 out 1e-5; gpt-4o-mini in 1.5e-7
-- out 6e-7. The scripted server answers every request with a fixed usage,
-- so real costs are known exactly; estimates depend on how prompts are
-- counted (llm.tokens or the bytes/4 approximation), so the checks use
-- bounds that hold for either.
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local pricing = llm.pricing

local function server(prompt_tokens, completion_tokens, delay)
  local body = cjson.encode {
    id = "chatcmpl-1", object = "chat.completion", model = "m",
    choices = { { index = 0, message = { role = "assistant", content = "ok" }, finish_reason = "stop" } },
    usage = { prompt_tokens = prompt_tokens, completion_tokens = completion_tokens,
              total_tokens = prompt_tokens + completion_tokens },
  }
  local lines = { "status 200", "header Content-Type: application/json" }
  if delay then lines[#lines + 1] = "sleep " .. delay end
  lines[#lines + 1] = "body " .. body
  -- to be closed: the server stops even when a check fails (a server left
  -- running blocks a later garbage collection in pclose for its lifetime)
  local srv = mock.start(table.concat(lines, "\n") .. "\n")
  return setmetatable(srv, { __close = function(s) s:stop() end })
end

local function model(srv, name)
  return llm.model { name = name, provider = "openai", base_url = srv.url .. "/v1", api_key = "k",
                     max_retries = 0 }
end

local function close_all()
  for _, b in ipairs(llm.budget.active()) do b:close() end
end

T.test("refuses the call that would pass the cap, before sending it", function()
  close_all()
  -- real cost of each call: 100*2.5e-6 + 100*1e-5 = 0.00125; estimate:
  -- prompt (~10 tokens)*2.5e-6 + max_tokens 100 * 1e-5 ~ 0.001025
  local srv <close> = server(100, 100)
  local m = model(srv, "gpt-4o")
  local b = llm.budget { usd = 0.003 }
  local req = { messages = { { role = "user", content = "hi" } }, max_tokens = 100 }
  T.ok(m:chat(req), "first call")
  T.ok(m:chat(req), "second call: 0.00125 + ~0.001 fits 0.003")
  local r, err = m:chat(req)
  T.eq(r, nil)
  T.eq(err.kind, "budget")
  T.ok(llm.is_error(err, "budget"))
  T.eq(err.limit, 0.003)
  T.near(err.spent, 0.0025, 1e-12)
  T.eq(err.in_flight, 0)
  T.ok(err.estimate > 0.001 and err.estimate < 0.0015, "estimate " .. err.estimate)
  T.ok(tostring(err):find("budget", 1, true))
  T.eq(#srv:requests(), 2, "the refused call was never sent")
  local s = b:status()
  T.near(s.spent, 0.0025, 1e-12)
  T.eq({ s.usd, s.in_flight, s.calls, s.refused, s.active, s.closed }, { 0.003, 0, 2, 1, 0, false })
  T.near(s.remaining, 0.0005, 1e-12)
  T.near(b:remaining(), 0.0005, 1e-12)
  T.ok(tostring(b):find("0.002500 spent", 1, true), tostring(b))
  -- a stream is refused the same way
  local st = m:stream(req)
  T.err(function() st:next() end, "budget")
  b:close()
  T.ok(m:chat(req), "a closed budget refuses nothing")
  b:close() -- twice is harmless
  T.eq(b:status().closed, true)
end)

T.test("per-model caps and model filters", function()
  close_all()
  local srv <close> = server(100, 100)
  local big, small = model(srv, "gpt-4o"), model(srv, "gpt-4o-mini")
  local req = { messages = { { role = "user", content = "hi" } }, max_tokens = 100 }
  local b = llm.budget { usd = 1, models = { ["openai/gpt-4o"] = 0.002 } }
  T.ok(big:chat(req))
  local _, err = big:chat(req)
  T.eq(err and err.kind, "budget", "gpt-4o's own cap")
  for _ = 1, 3 do T.ok(small:chat(req), "gpt-4o-mini only has the total cap") end
  local s = b:status()
  T.near(s.models["openai/gpt-4o"].spent, 0.00125, 1e-12)
  T.near(s.spent, 0.00125 + 3 * (100 * 1.5e-7 + 100 * 6e-7), 1e-12)
  b:close()

  local only = llm.budget { usd = 0.002, model = "gpt-4o" }
  T.ok(big:chat(req))
  T.eq(select(2, big:chat(req)).kind, "budget")
  T.ok(small:chat(req), "a budget for gpt-4o ignores other models")
  T.eq(only:status().calls, 1)
  only:close()

  -- two budgets at once: a call must fit both
  local a1 = llm.budget { usd = 1 }
  local a2 = llm.budget { usd = 0.00001 }
  T.eq(select(2, small:chat(req)).kind, "budget")
  T.eq(a1:status().refused, 0)
  T.eq(a2:status().refused, 1)
  a1:close()
  a2:close()
end)

T.test("expected completion: max_tokens, else the default, capped by the model", function()
  close_all()
  local srv <close> = server(1, 1)
  pricing.set("budget-test-model", { input = 0, output = 1e-6, max_output_tokens = 4096 })
  local m = model(srv, "budget-test-model")
  local b = llm.budget { usd = 0 }
  local _, err = m:chat { messages = { { role = "user", content = "x" } }, max_tokens = 7 }
  T.near(err.estimate, 7e-6, 1e-15, "max_tokens")
  _, err = m:chat { messages = { { role = "user", content = "x" } }, max_completion_tokens = 9 }
  T.near(err.estimate, 9e-6, 1e-15, "max_completion_tokens")
  _, err = m:chat "x"
  T.near(err.estimate, 1024e-6, 1e-15, "the default")
  b:close()
  b = llm.budget { usd = 0, completion_tokens = 100000 }
  _, err = m:chat "x"
  T.near(err.estimate, 4096e-6, 1e-15, "never above max_output_tokens")
  b:close()
  -- embeddings: prompt tokens only
  pricing.set("budget-embed-model", { input = 1e-6, output = 0 })
  local e = model(srv, "budget-embed-model")
  b = llm.budget { usd = 0 }
  _, err = e:embed { "abcd", "efgh" }
  T.eq(err.kind, "budget")
  T.ok(err.estimate >= 2e-6 and err.estimate <= 8e-6, "embedding estimate " .. err.estimate)
  b:close()
  pricing.set("budget-test-model", nil)
  pricing.set("budget-embed-model", nil)
  T.eq(#srv:requests(), 0)
end)

T.test("models without a price: refused, or allowed on request", function()
  close_all()
  local srv <close> = server(1, 1)
  local m = model(srv, "acme-unpriced-7b")
  local b = llm.budget { usd = 1 }
  local r, err = m:chat "hi"
  T.eq(r, nil)
  T.eq(err.kind, "budget")
  T.ok(err.message:find("cannot price", 1, true), err.message)
  b:close()
  b = llm.budget { usd = 1, unknown = "allow" }
  T.ok((m:chat "hi"), "allowed")
  T.eq({ b:status().spent, b:status().calls, b:status().unpriced }, { 0, 1, 1 })
  b:close()
end)

T.test("replacing a named budget keeps its accounting", function()
  close_all()
  local srv <close> = server(100, 100)
  local m = model(srv, "gpt-4o")
  local req = { messages = { { role = "user", content = "hi" } }, max_tokens = 100 }
  local b1 = llm.budget { name = "run", usd = 0.002 }
  T.ok(m:chat(req))
  T.eq(select(2, m:chat(req)).kind, "budget")
  local b2 = llm.budget { name = "run", usd = 0.01 }
  T.eq(b1:status().closed, true)
  T.near(b2:status().spent, 0.00125, 1e-12)
  T.eq(b2:status().refused, 1)
  T.ok(m:chat(req), "the raised cap lets calls through")
  T.near(b2:status().spent, 0.0025, 1e-12)
  T.eq(#llm.budget.active(), 1)
  do
    local scoped <close> = llm.budget { usd = 0 }
    T.eq(select(2, m:chat(req)).kind, "budget")
  end
  T.ok(m:chat(req), "a <close> budget ends with its scope")
  b2:close()
end)

T.test("options are checked", function()
  close_all()
  T.err(function() llm.budget() end, "table expected")
  T.err(function() llm.budget {} end, "give usd")
  T.err(function() llm.budget { usd = -1 } end, "finite number")
  T.err(function() llm.budget { usd = 0 / 0 } end, "finite number")
  T.err(function() llm.budget { usd = 1, usdd = 2 } end, "unknown option")
  T.err(function() llm.budget { usd = 1, unknown = "maybe" } end, "refuse")
  T.err(function() llm.budget { models = { ["gpt-4o"] = "x" } } end, "finite number")
  T.eq(#llm.budget.active(), 0)
end)

-- 200 calls, 64 in flight: the cap holds. Each call really costs
-- 5*1.5e-7 + 50*6e-7 = 3.075e-5, at most its estimate (max_tokens 50, a
-- prompt of at least 5 tokens however it is counted).
T.test("64 calls in flight never pass the cap", function()
  close_all()
  local actual = 5 * 1.5e-7 + 50 * 6e-7
  local srv <close> = server(5, 50, 0.02)
  local m = model(srv, "gpt-4o-mini")
  local cap = 0.00123
  local b = llm.budget { usd = cap }
  local running, peak = 0, 0
  local items = {}
  for i = 1, 200 do items[i] = i end
  local oks, refused, est, other = 0, 0, nil, {}
  llm.map(items, function(i)
    running = running + 1
    if running > peak then peak = running end
    local r, err = m:chat { messages = { { role = "user", content = "question " .. i } }, max_tokens = 50 }
    running = running - 1
    if r then
      oks = oks + 1
    elseif err.kind == "budget" then
      refused = refused + 1
      est = math.max(est or 0, err.estimate)
    else
      other[#other + 1] = tostring(err)
    end
    return true
  end, { concurrency = 64 })
  local s = b:status()
  T.eq(other, {}, "only budget refusals")
  T.eq(oks + refused, 200)
  T.ok(peak >= 16, "calls overlapped: peak " .. peak)
  T.ok(refused > 0, "the cap was reached")
  T.ok(est >= actual, "estimates cover the real cost")
  T.near(s.spent, oks * actual, 1e-12, "spent is the sum of real costs")
  T.ok(s.spent <= cap * (1 + 1e-9), ("spent %.9f <= cap %.9f"):format(s.spent, cap))
  T.ok(oks >= math.floor(cap / est) - 1, ("no early refusals: %d ok, estimate %.9f"):format(oks, est))
  T.eq({ s.in_flight, s.active, s.calls, s.refused }, { 0, 0, oks, refused })
  T.eq(#srv:requests(), oks, "refused calls were never sent")
  b:close()
end)

-- When real costs exceed the estimates (an answer longer than expected),
-- the overshoot is at most what the calls in flight exceeded theirs by.
T.test("overshoot is bounded by the in-flight underestimates", function()
  close_all()
  local srv <close> = server(5, 100, 0.02) -- 100 completion tokens against max_tokens 50
  local m = model(srv, "gpt-4o-mini")
  local actual = 5 * 1.5e-7 + 100 * 6e-7
  local cap = 0.00123
  local b = llm.budget { usd = cap }
  local items = {}
  for i = 1, 200 do items[i] = i end
  local min_est = math.huge
  llm.map(items, function(i)
    local r, err = m:chat { messages = { { role = "user", content = "q" .. i } }, max_tokens = 50 }
    if not r and err.kind == "budget" then min_est = math.min(min_est, err.estimate) end
    return true
  end, { concurrency = 64 })
  local s = b:status()
  T.ok(s.refused > 0)
  T.ok(min_est < actual)
  local bound = cap + 64 * (actual - min_est)
  T.ok(s.spent <= bound + 1e-12, ("spent %.9f <= %.9f"):format(s.spent, bound))
  T.eq({ s.in_flight, s.active }, { 0, 0 })
  b:close()
end)

-- A call whose task is cancelled mid-request (llm.race's losers,
-- llm.with_timeout, a failed llm.map sibling) must give its reservation
-- back, or the budget fills up with calls that never happen.
T.test("a cancelled call releases its reservation", function()
  close_all()
  local srv <close> = server(5, 50, 0.5)
  local m = model(srv, "gpt-4o-mini")
  local b = llm.budget { usd = 1 }
  local req = { messages = { { role = "user", content = "q" } }, max_tokens = 50 }
  local r, err = llm.with_timeout(0.05, function() return m:chat(req) end)
  T.eq(r, nil)
  T.eq(err.kind, "timeout")
  r, err = llm.with_timeout(0.05, function() return m:stream(req, { on_delta = function() end }) end)
  T.eq(err.kind, "timeout")
  local s = b:status()
  T.eq({ s.in_flight, s.active, s.calls }, { 0, 0, 2 })
  b:close()
end)
