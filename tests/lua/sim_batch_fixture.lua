-- What the Batch API tests (test_batch.lua, test_batch_anthropic_sim.lua)
-- share: numbered questions, the simulator's batch counters, and a fresh
-- simulator with quick batches for every test.
local M = {}

-- n questions "What is i + 7?" (i from offset + 1)
function M.questions(n, offset)
  local out = {}
  for i = 1, n do out[i] = ("What is %d + %d?"):format(i + (offset or 0), 7) end
  return out
end

function M.stats() return llm.sim.stats().batch end

-- An empty simulator with quick batches (0.2 s), no failures or faults,
-- and the zero profile (the synchronous calls compared with a batch's are
-- instant); cfg overrides any of it.
function M.fresh(cfg)
  llm.sim.reset()
  local c = { batch_turnaround_s = 0.2, batch_fail_rate = 0, batch_expire_s = 86400, faults = false,
              profile = "zero" }
  for k, v in pairs(cfg or {}) do c[k] = v end
  llm.sim.configure(c)
end

return M
