-- A candidate strategy for `llmrun replay run.cassette --script ...`:
-- what if every gpt-4o request had gone to gpt-4o-mini, with an exact
-- cache in front (a request seen before is answered at no cost)?
--
--   LLMRUN_RECORD=run.cassette llmrun examples/before_after.lua
--   llmrun replay run.cassette --script examples/strategy_cache_mini.lua --sim
--
-- Requests the strategy leaves alone take their recorded answers; a
-- request it changes is answered by the recording when the recording made
-- the same request (the before/after run asked gpt-4o-mini too), else by
-- the simulator (--sim), the provider (--live), or estimated (neither).
local seen = {}

-- the same request: model, messages and parameters
local function key(req)
  return req.model .. "\0" .. require("llm.cache_canon").encode(req.body)
end

return {
  name = "gpt-4o -> gpt-4o-mini, exact cache",
  on_request = function(req)
    if req.kind == "embed" then return nil end
    if req.model == "gpt-4o" then req.model = "gpt-4o-mini" end
    local hit = seen[key(req)]
    if hit then return { text = hit.text } end
    return req
  end,
  on_response = function(req, resp)
    if req.kind ~= "embed" and resp.text then seen[key(req)] = resp end
  end,
}
