-- llm.serve: an HTTP server on llmrun's event loop whose requests are
-- answered by Lua functions, each request in its own task (so a handler
-- may make model calls, sleep, stream: everything a script can do).
--
--   local srv = llm.serve.listen({ port = 8080 }, function(req)
--     -- req.method, req.path, req.query, req.target, req.headers (lower-case
--     -- names), req.body, req.client ("127.0.0.1:54321"), req.version
--     return 200, { ["Content-Type"] = "application/json" }, '{"ok":true}'
--   end)
--   print(srv.url)        -- http://127.0.0.1:8080
--   srv:stats()  srv:close()  srv:wait()
--
-- A handler answers by returning status, headers, body, or by streaming:
--   req:start(200, { ["Content-Type"] = "text/event-stream" })
--   req:write(bytes)      -- waits while the client is slow (back-pressure);
--                         -- nil, err once the client has left (err.kind
--                         -- "serve", err.status "closed")
--   req:finish()
-- or req:respond(status, headers, body) itself. A client that leaves
-- before its answer is complete cancels the handler's task (its <close>
-- variables run; a model call in flight is cancelled). A handler that
-- raises gets a 500 whose body names the error (opts.on_error(req, err,
-- traceback) is told too); one that returns nothing and answered nothing
-- gets a 500 as well.
--
-- opts: host (default 127.0.0.1), port (0: any free one), and the
-- engine's limits: max_connections (1024), max_header_bytes (64 KiB),
-- max_body_bytes (32 MiB), header_timeout (10 s), body_timeout (60 s),
-- idle_timeout (60 s), write_timeout (60 s), high_water (256 KiB of
-- output waiting before writes wait). The engine answers what it refuses
-- itself (413, 431, 408, 400, 503 over the connection cap) in OpenAI's
-- error shape, or Anthropic's under /v1/messages.
local S = require "_llm.serve"
local loop = require "_llm.loop"
local spawn = require("llm.context").spawn -- handlers keep the starter's context

local M = {}

local Request = {}
Request.__index = Request

function Request:respond(status, headers, body)
  self._answered = true
  return self.raw:respond(status, headers, body)
end

function Request:start(status, headers)
  self._answered = true
  return self.raw:start(status, headers)
end

function Request:write(data) return self.raw:write(data) end
function Request:finish() return self.raw:finish() end
function Request:aborted() return self.raw:aborted() end
function Request:header(name) return self.headers[name:lower()] end

M.Request = Request

local Server = {}
Server.__index = Server

--- The engine's counters: connections, connections_peak, requests,
-- responses, in_flight, aborted, timeouts, refused_busy, refused_limit.
function Server:stats() return self.raw:stats() end

--- Stops listening, closes every connection; handlers still running are
-- left to finish (their writes fail).
function Server:close()
  if self.closed then return end
  self.closed = true
  self.raw:close()
  -- the acceptor would end on its next turn; a script ending now must
  -- not find it still running
  if self.acceptor and self.acceptor ~= loop.current() then self.acceptor:cancel() end
end
Server.__close = Server.close

--- Waits until the server is closed.
function Server:wait()
  if self.acceptor then self.acceptor:wait() end
end

local function error_answer(req, err)
  local msg = type(err) == "table" and err.message or tostring(err)
  local body = S.error_body(req.path, 500, "api_error", "handler error: " .. tostring(msg))
  return req.raw:respond(500, { ["Content-Type"] = "application/json" }, body)
end

local function serve_one(raw, handler, on_error)
  local req = raw:info()
  req.raw = raw
  setmetatable(req, Request)
  local _ <close> = raw
  local ok, status, headers, body = xpcall(handler, debug.traceback, req)
  if not ok then
    -- a client that left makes the handler fail (a write refused): not news
    if on_error and not raw:aborted() then pcall(on_error, req, status) end
    if not req._answered then error_answer(req, status) end
    return
  end
  if status ~= nil and not req._answered then
    req._answered = true
    raw:respond(math.tointeger(status) or 200, headers, body)
  elseif not req._answered then
    error_answer(req, "the handler returned no answer")
  end
end

--- llm.serve.listen(opts, handler) -> server | nil, err
function M.listen(opts, handler)
  if type(opts) ~= "table" then error("bad argument #1 to 'llm.serve.listen' (table expected)", 2) end
  if type(handler) ~= "function" then
    error("bad argument #2 to 'llm.serve.listen' (function expected)", 2)
  end
  local engine_opts = {}
  for k, v in pairs(opts) do
    if k ~= "on_error" then engine_opts[k] = v end
  end
  local raw, err = S.listen(engine_opts)
  if not raw then return nil, err end
  local host = opts.host or "127.0.0.1"
  local srv = setmetatable({
    raw = raw, port = raw:port(), host = host,
    url = ("http://%s:%d"):format(host:find(":") and "[" .. host .. "]" or host, raw:port()),
  }, Server)
  local on_error = opts.on_error
  srv.acceptor = spawn(function()
    while true do
      local r = raw:accept()
      if not r then return end
      r:bind(spawn(serve_one, r, handler, on_error))
    end
  end)
  return srv
end

return M
