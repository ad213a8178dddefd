-- The result of a call. A plain table with a metatable, so it prints as
-- its text (print(r), tostring(r)) and inspects as its fields (llm.inspect,
-- and `=r` in the REPL; README "Responses" documents each):
--   text, finish_reason, tool_calls (a dense list; arguments as the
--   provider sent them), usage {prompt_tokens, completion_tokens,
--   total_tokens, cached_tokens, reasoning_tokens, cache_creation_tokens,
--   cache_creation_1h_tokens, input_tokens, web_search_requests},
--   refusal, reasoning, citations, stop_sequence, stop_details, id,
--   system_fingerprint, service_tier, ratelimit, latency_ms, ttft_ms,
--   model, provider, simulated, request_id, retries, cost (nil = unknown),
--   cached (false | "exact" | "semantic"), partial (stream cut short), raw,
--   logprobs (when the request asked for them, OpenAI-style providers: the
--   list of {token=, logprob=, bytes=, top_logprobs=} of the first choice).
-- raw is the decoded body, or for a stream the message its events make.
-- Cache hits (llm.cache) also carry saved {latency_ms, ttft_ms, usage, model,
--   cost}: what the original call took; shared = true for an answer shared
--   with an identical call in flight; similarity and matched_prompt for a
--   semantic hit. Their latency_ms is the lookup and their usage zero.
local cjson = require "cjson"
local json = require "_llm.json" -- reads what servers send (src/lmod_json.c says why)

local M = {}

-- `raw` (the decoded response body) is decoded again on first use rather
-- than kept: a kept document is a dozen tables per response, and a run
-- holding thousands of responses spent most of its time in the garbage
-- collector walking them. The body string is one object.
local mt = { __name = "llm.response" }
mt.__index = function(r, k)
  if k == "raw" then
    local body = rawget(r, "_body")
    if body then
      local ok, doc = pcall(json.decode, body)
      if ok then
        rawset(r, "raw", doc)
        return doc
      end
    end
  end
  return nil
end
mt.__tostring = function(r) return r.text or "" end

-- Token counts arrive from JSON as floats (14.0); they are counts, so
-- they become integers and print as 14.
local function integer_counts(usage)
  if type(usage) ~= "table" then return end
  for k, v in pairs(usage) do
    if math.type(v) == "float" then
      local i = math.tointeger(v)
      if i then usage[k] = i end
    end
  end
end

function M.new(fields)
  integer_counts(fields.usage)
  if type(fields.saved) == "table" then integer_counts(fields.saved.usage) end
  return setmetatable(fields, mt)
end

function M.is(v)
  return getmetatable(v) == mt
end

return M
