-- The result of a call. A plain table with a metatable, so it prints as
-- its text and inspects as its fields:
--   text, finish_reason, tool_calls, usage {prompt_tokens, completion_tokens,
--   total_tokens, cached_tokens, reasoning_tokens}, latency_ms, ttft_ms,
--   model, provider, simulated, request_id, retries, cost (nil = unknown),
--   cached (false | "exact" | "semantic"), partial (stream cut short), raw.
local M = {}

local mt = { __name = "llm.response" }
mt.__index = {}
mt.__tostring = function(r) return r.text or "" end

function M.new(fields)
  return setmetatable(fields, mt)
end

function M.is(v)
  return getmetatable(v) == mt
end

return M
