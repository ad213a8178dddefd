-- llm.experiment's batch variants: the cases' m:chat calls go out as one
-- batch (llm.batch_defer), the answers are the synchronous arm's, the cost
-- is half, calls are logged under the variant's tag; a variant that calls
-- twice makes two rounds; a failing case or a check that calls a model
-- does not hold the batch up.
local T = ...
local calls = require "llm.calls"

llm.sim.configure { batch_turnaround_s = 0.2, profile = "zero", faults = false }

local m = llm.model "gpt-4o-mini"

local function cases(n)
  local out = {}
  for i = 1, n do
    out[i] = { id = "q" .. i, question = ("What is %d + %d?"):format(i, 11), answer = tostring(i + 11) }
  end
  return out
end

local function ask(c) return m:chat { user = c.question, max_tokens = 10 } end

local QUIET = { quiet = true, store = false }

T.test("a batch arm beside the synchronous one: same answers, half the cost, one batch", function()
  llm.sim.reset()
  local kinds = {}
  local function watch(call) kinds[call.tag] = kinds[call.tag] or {}; kinds[call.tag][call.kind] = true end
  calls.on_finish(watch)
  local cmp = llm.experiment {
    cases = cases(16), mode = "blocks", concurrency = 4, progress = false,
    variants = { { name = "sync", run = ask }, { name = "batch", run = ask, batch = QUIET } },
    check = llm.check.equals(),
  }
  calls.off(watch)
  local st = llm.sim.stats().batch
  T.eq(st.batches_created, 1)
  T.eq(st.lines_answered, 16)
  local cost = cmp:metric("cost")
  T.near(cost.values.batch / cost.values.sync, 0.5, 1e-9)
  local q = cmp:metric("quality")
  T.eq(q.values.batch, q.values.sync)
  T.ok(cmp:metric("wall").values.batch > 0)
  -- answer by answer, the same
  for _, row in ipairs(cmp:cases()) do
    T.eq(row.variants.batch.output, row.variants.sync.output, row.id)
  end
  T.eq(kinds.batch, { batch = true })
  T.eq(kinds.sync, { chat = true })
  local text = cmp:text()
  T.ok(text:find("batch: Batch API, at batch prices: 16 requests in 1 batch", 1, true), text)
end)

T.test("a variant that calls twice makes two rounds; a failing case does not hold it up", function()
  llm.sim.reset()
  local cmp = llm.experiment {
    cases = cases(6), progress = false,
    variants = {
      twice = { batch = QUIET, run = function(c)
        if c.id == "q3" then error("this case fails before calling") end
        local first = ask(c)
        return m:chat { user = "Say again: " .. first.text, max_tokens = 5 }
      end },
    },
  }
  local st = llm.sim.stats().batch
  T.eq(st.batches_created, 2)
  T.eq(st.lines_answered, 10)
  T.eq(#cmp.variants.twice.errors, 1)
  T.ok(cmp:text():find("2 rounds", 1, true))
end)

T.test("a check's own model calls are not deferred into the batch", function()
  llm.sim.reset()
  local judge_kinds = {}
  local function watch(call) if call.tag and call.tag:find("^judge:") then judge_kinds[call.kind] = true end end
  calls.on_finish(watch)
  llm.experiment {
    cases = cases(3), progress = false,
    variants = { b = { batch = QUIET, run = ask } },
    check = function(_, r)
      local again = m:chat { user = "Is " .. r.text .. " a number?", max_tokens = 3 }
      return again ~= nil
    end,
  }
  calls.off(watch)
  T.eq(judge_kinds, { chat = true })
  T.eq(llm.sim.stats().batch.batches_created, 1)
end)

T.test("misuse: batch must be true or options", function()
  T.err(function()
    llm.experiment { cases = cases(1), variants = { b = { batch = "yes", run = ask } } }
  end, "batch must be true or a table")
  T.err(function()
    llm.experiment { cases = cases(1), progress = false, variants = { b = { batch = { nope = 1 }, run = ask } } }
  end, "unknown option 'nope'")
end)

T.test("a batch answer says which skill answered; a batch arm's filler answers get the note", function()
  llm.sim.reset()
  local res = llm.batch(m, { { user = "What is 2 + 3?" }, { user = "Summarise the plot of Hamlet." } }, QUIET)
  T.eq(res[1].sim_skill, "arithmetic")
  T.eq(res[2].sim_skill, "filler")
  local prose = { { id = 1, question = "Summarise the plot of Hamlet.", answer = "revenge" },
                  { id = 2, question = "Summarise the plot of Macbeth.", answer = "ambition" } }
  local real, buf = io.stderr, {}
  io.stderr = { write = function(self, ...) for _, s in ipairs { ... } do buf[#buf + 1] = s end return self end }
  local ok, cmp = pcall(llm.experiment, { cases = prose, progress = false, check = llm.check.equals(),
    variants = { b = { batch = QUIET, run = function(c) return m:chat(c.question) end } } })
  io.stderr = real
  assert(ok, cmp)
  T.ok(table.concat(buf):find("b: 2 of 2 answers were filler", 1, true), table.concat(buf))
  T.ok(cmp:text():find("2 of 2 answers were filler", 1, true))
end)
