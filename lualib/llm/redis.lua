-- llm.redis: Redis as llmrun's shared state between processes and hosts
-- (the shared cache, budgets across processes, experiment workers).
--
--   local r = llm.redis.client "redis://127.0.0.1:6379/0"   -- one per URL per process
--   r:call("GET", k)           -> reply | nil, err   (waits; default timeout r.timeout)
--   r:call_timeout(s, "GET", k)
--   r:shard_slots() / r:call_at(slot, "SCAN", ...)  -> each node of a Redis Cluster
--   r:pipeline { {"SET", k, v}, {"GET", k} } -> {reply...} | nil, err
--   r:send("SET", k, v)        -> ticket | nil, err  (does not wait: for finish hooks)
--   r:every(seconds, "PEXPIRE", k, ms) -> repeater (keeps a lock alive; :stop())
--   r:borrow() / r:give_back(c) -> a dedicated connection for blocking reads
--   r:info()
--
--   local s = llm.redis.script [[ return redis.call("INCRBY", KEYS[1], ARGV[1]) ]]
--   s:run(r, {key}, {5})  -> reply | nil, err   (EVALSHA; after NOSCRIPT, SCRIPT LOAD and again)
--   s:send(r, {key}, {5}) -> ticket              (EVAL with the text: nobody is there to retry)
--
--   llm.redis.key("cache:default", "v", hex) -> "llmrun:{cache:default}:v:<hex>"
--   llm.redis.key_slot(key) -> its Redis Cluster slot (0..16383)
--
-- Replies: strings, integers, false for nil, lists. Failures: nil, err with
-- err.kind "transport" (unreachable: while the client waits to reconnect,
-- with backoff up to 2 s, commands fail at once), "timeout", or "redis"
-- (an error reply). The client is src/redis_client.c: hiredis on llmrun's
-- event loop, so waiting for Redis never blocks other calls.
--
-- Keys: every key is "llmrun:{<tag>}:..." with the part in braces a Redis
-- Cluster hash tag, so the keys a script touches together (a cache entry,
-- its lock and its notification stream; a budget's caps and reservations)
-- are in one slot.
--
-- Redis Cluster: a URL naming any node works. The client (C) learns the
-- server is a cluster from its first MOVED or ASK reply, then sends each
-- command to its first key's node, one connection per node, following
-- MOVED and ASK (r:info() counts them: moved, asks, nodes). A command is
-- routed by one key, so a command or script touches keys of one hash tag
-- (SCAN is routed by its MATCH pattern's hash tag); scripts are loaded
-- into each node as they first run there. Scripts read time from Redis (redis.call("TIME")), never
-- from the clients, whose clocks may differ.
--
-- Adding an atomic operation (e.g. a rate limiter's token bucket): write
-- it as a script object at module level, keys all under one hash tag, and
-- call s:run(client, keys, args) where the caller may wait (a before-hook)
-- or s:send(...) where it may not (a finish-hook).
--
-- At exit, before the state closes, every client's unanswered commands
-- (writes sent without waiting) get up to DRAIN_SECONDS to reach Redis;
-- functions registered with llm.redis.before_exit run first (a cache
-- flushes its counters there).
local C = require "_llm.redis"
local errors = require "llm.errors"

local M = {}

M.DEFAULT_TIMEOUT = 2.0      -- seconds a command may take
M.DRAIN_SECONDS = 2.0
M.PREFIX = "llmrun"

local Client = {}
Client.__index = Client
Client.__name = "llm.redis"

local clients = {}           -- url -> Client
local before_exit = {}
local exit_hooked = false

local function drain_all()
  for i = #before_exit, 1, -1 do pcall(before_exit[i]) end
  local deadline = require("_llm.loop").now() + M.DRAIN_SECONDS
  for _, cl in pairs(clients) do
    if cl.c then
      local left = deadline - require("_llm.loop").now()
      if left > 0 then pcall(cl.c.drain, cl.c, left) end
    end
  end
end

--- fn() runs at exit before the clients drain (it may send, not wait).
function M.before_exit(fn)
  before_exit[#before_exit + 1] = fn
end

--- Whether libhiredis can be loaded: true | false, message.
M.available = C.available

--- A key's Redis Cluster slot (CRC16 of its hash tag, mod 16384).
M.key_slot = C.key_slot

--- The URL's parts without secrets: {host=, port=, socket=, db=, display=,
-- has_password=} | nil, err (err.kind "redis", err.status "url").
M.parse_url = C.parse_url

--- "llmrun:{tag}:part:part..."; tag must not contain braces.
function M.key(tag, ...)
  tag = tostring(tag)
  if tag:find("[{}]") then
    error("llm.redis.key: a hash tag cannot contain { or }: " .. tag, 2)
  end
  local parts = { M.PREFIX .. ":{" .. tag .. "}" }
  for _, p in ipairs { ... } do parts[#parts + 1] = tostring(p) end
  return table.concat(parts, ":")
end

local function check_url(url, fname)
  if type(url) ~= "string" then
    error(("%s: a redis:// URL expected, got %s"):format(fname, type(url)), 3)
  end
  local parsed, err = C.parse_url(url)
  if not parsed then error(fname .. ": " .. err.message, 3) end
  return parsed
end

--- The client for url in this process (created on first use; it connects
-- on its first command). opts: timeout (default per command),
-- connect_timeout, backoff_min, backoff_max (seconds).
function M.client(url, opts)
  local parsed = check_url(url, "llm.redis.client")
  local cl = clients[url]
  if cl and cl.c then return cl end
  opts = opts or {}
  cl = setmetatable({
    url = url, display = parsed.display, timeout = opts.timeout or M.DEFAULT_TIMEOUT,
    opts = opts, pool = {},
  }, Client)
  cl.c = C.connect(url, opts)
  clients[url] = cl
  if not exit_hooked then
    exit_hooked = true
    require("_llm.host").on_exit(drain_all)
  end
  return cl
end

function Client:__tostring() return "redis " .. self.display end

function Client:call(...) return self.c:call(self.timeout, ...) end
function Client:call_timeout(t, ...) return self.c:call(t, ...) end
--- On a Redis Cluster: the command on the node holding slot; shard_slots()
-- gives one slot per node ({} for a single server), to visit every node.
function Client:call_at(slot, ...) return self.c:call_at(slot, self.timeout, ...) end
function Client:shard_slots() return self.c:shard_slots() end
function Client:pipeline(list, t) return self.c:pipeline(t or self.timeout, list) end
function Client:send(...) return self.c:send(...) end
function Client:every(interval, ...) return self.c:every(interval, ...) end
function Client:info() return self.c:info() end

--- A connection of its own, for commands that block it (XREAD BLOCK,
-- XREADGROUP BLOCK); give it back when done so the next one reuses it.
function Client:borrow()
  local c = table.remove(self.pool)
  if c then return c end
  return C.connect(self.url, self.opts)
end

function Client:give_back(c)
  if #self.pool < 16 then self.pool[#self.pool + 1] = c else c:close() end
end

function Client:close()
  for _, c in ipairs(self.pool) do c:close() end
  self.pool = {}
  if self.c then self.c:close() end
  self.c = nil
  if clients[self.url] == self then clients[self.url] = nil end
end

-- ---- scripts ------------------------------------------------------------------------

local Script = {}
Script.__index = Script

--- A Redis Lua script, loaded into each server on first use.
function M.script(source)
  if type(source) ~= "string" or source == "" then
    error("bad argument #1 to 'llm.redis.script' (script text expected)", 2)
  end
  return setmetatable({ source = source, sha = nil }, Script)
end

local function eval_args(verb, what, keys, args)
  local cmd = { verb, what, #keys }
  for _, k in ipairs(keys) do cmd[#cmd + 1] = k end
  for _, a in ipairs(args or {}) do cmd[#cmd + 1] = a end
  return cmd
end

--- Runs the script: EVALSHA, and after NOSCRIPT (a server that has not
-- seen it, or restarted) SCRIPT LOAD and EVALSHA once more. On a Redis
-- Cluster SCRIPT LOAD (no key) would reach some node, not necessarily the
-- one of the keys: there NOSCRIPT is answered by EVAL with the text, which
-- runs the script and keeps it on the keys' node for the next EVALSHA.
function Script:run(cl, keys, args, timeout)
  local t = timeout or cl.timeout
  for _ = 1, 2 do
    if not self.sha then
      local sha, err = cl.c:call(t, "SCRIPT", "LOAD", self.source)
      if not sha then return nil, err end
      self.sha = sha
    end
    local reply, err = cl.c:call(t, table.unpack(eval_args("EVALSHA", self.sha, keys, args)))
    if reply ~= nil or not (errors.is(err, "redis") and tostring(err.message):find("^NOSCRIPT")) then
      return reply, err
    end
    if cl.c:info().cluster then
      return cl.c:call(t, table.unpack(eval_args("EVAL", self.source, keys, args)))
    end
    self.sha = nil
  end
  return nil, errors.new("redis", "the script could not be loaded (NOSCRIPT twice)")
end

--- Sends the script without waiting (EVAL with its text).
function Script:send(cl, keys, args)
  return cl.c:send(table.unpack(eval_args("EVAL", self.source, keys, args)))
end

-- ---- streams ---------------------------------------------------------------------------

--- The entries of an XREAD/XREADGROUP reply for one stream, as
-- {id=, fields={name=value}} in order (an empty list for none).
function M.stream_entries(reply)
  local out = {}
  if type(reply) ~= "table" or type(reply[1]) ~= "table" then return out end
  for _, e in ipairs(reply[1][2] or {}) do
    local f = {}
    local list = e[2]
    if type(list) == "table" then
      for i = 1, #list - 1, 2 do f[list[i]] = list[i + 1] end
    end
    out[#out + 1] = { id = e[1], fields = f }
  end
  return out
end

--- Stream ids compare as (milliseconds, sequence).
function M.id_less(a, b)
  local am, as = a:match("^(%d+)-(%d+)$")
  local bm, bs = b:match("^(%d+)-(%d+)$")
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end

M.Client = Client
M._clients = clients

return M
