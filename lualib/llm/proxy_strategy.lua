-- Loading what the gateway runs besides forwarding: the config file and
-- the user's strategy script.
--
-- A strategy is a Lua script (llmrun serve --proxy --script FILE) that
-- defines, as globals or in a returned table:
--
--   function on_request(req, ctx)
--     -- req.api ("openai" | "anthropic"), req.endpoint ("chat"),
--     -- req.model, req.messages, req.body (the client's decoded body),
--     -- req.stream, req.headers, req.client, req.tag, req.case.
--     -- Change req.model / req.messages / req.body in place (the body is
--     -- then re-encoded; untouched, the client's bytes go as they are;
--     -- set req.changed = true after edits deeper than a message's
--     -- content), set req.route = a model or router (llm.route.*,
--     -- ctx.model "name"), or return:
--     --   "text" or { text = "..." }           answer directly
--     --   { status = 429, message = "..." }     refuse (an API-shaped error)
--     --   a model or router                     send it there
--   end
--   function on_response(resp, ctx)
--     -- the llmrun response (resp.text, usage, cost, cached, latency_ms...);
--     -- for a JSON answer, change resp.text or return a new text or table;
--     -- a stream has been sent by then: it is for observing
--   end
--
-- ctx: api, endpoint, client, tag, case, key_id, model (the name asked),
-- and ctx.proxy. ctx.upstream(name) gives the gateway's model for a name
-- (with its cache), for routes: llm.route.fallback{ ctx.upstream "a", ... }.
-- The script runs once at start (its first argument is "--strategy"),
-- with the whole llm library (llm.compress,
-- llm.route, llm.tokens...). An error in a hook answers that request 500
-- naming the error and is printed on stderr; the gateway goes on.
local cjson = require "cjson"

local M = {}

--- The strategy table from a script file -> strategy | nil, err.
function M.load(path)
  local env = setmetatable({}, { __index = _G })
  local chunk, err = loadfile(path, "t", env)
  if not chunk then return nil, err end
  -- "--strategy" tells a file that is also a runnable demo that it was
  -- loaded as a strategy (examples/proxy_strategy.lua)
  local ok, ret = pcall(chunk, "--strategy")
  if not ok then return nil, path .. ": " .. tostring(ret) end
  local s = type(ret) == "table" and ret or {}
  local strat = {
    on_request = s.on_request or rawget(env, "on_request"),
    on_response = s.on_response or rawget(env, "on_response"),
    path = path,
  }
  for _, k in ipairs { "on_request", "on_response" } do
    if strat[k] ~= nil and type(strat[k]) ~= "function" then
      return nil, ("%s: %s must be a function"):format(path, k)
    end
  end
  if not strat.on_request and not strat.on_response then
    return nil, path .. ": defines neither on_request nor on_response"
  end
  return strat
end

--- The config file: a Lua file returning a table, or JSON -> table | nil, err.
function M.config(path)
  if path:match("%.json$") then
    local f, err = io.open(path, "rb")
    if not f then return nil, err end
    local text = f:read("a")
    f:close()
    local ok, doc = pcall(cjson.decode, text)
    if not ok or type(doc) ~= "table" then return nil, path .. ": not a JSON object" end
    return doc
  end
  local chunk, err = loadfile(path, "t", setmetatable({}, { __index = _G }))
  if not chunk then return nil, err end
  local ok, cfg = pcall(chunk)
  if not ok then return nil, path .. ": " .. tostring(cfg) end
  if type(cfg) ~= "table" then return nil, path .. ": must return a table" end
  return cfg
end

return M
