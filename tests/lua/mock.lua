-- Starts the scripted HTTP server (tests/tools/mockhttp, see
-- tests/c/mock_http.h for the script language) for one test:
--   local srv <close> = mock.start(script)   srv.url, srv:requests(), srv:stop()
local M = {}

-- Joins response blocks into one script: the server answers the Nth
-- request with the Nth block.
function M.script(...)
  return table.concat({ ... }, "\n---\n") .. "\n"
end

-- mode: a hostile server built into mockhttp (`mockhttp --modes`) instead
-- of a script.
local function start(script, seconds, mode)
  local bin = assert(os.getenv("MOCKHTTP"), "MOCKHTTP is not set (run through ctest)")
  local dir = os.tmpname()
  os.remove(dir)
  local sfile, lfile = dir .. ".script", dir .. ".log"
  local first = sfile
  if mode then
    first = "--mode " .. mode
  else
    local f = assert(io.open(sfile, "w"))
    f:write(script)
    f:close()
  end
  local p = assert(io.popen(("%s %s %s %d"):format(bin, first, lfile, seconds or 30), "r"))
  local port, pid = p:read("n", "n")
  assert(port and pid, "mockhttp did not start")
  local srv = { port = port, pid = pid, url = ("http://127.0.0.1:%d"):format(port), pipe = p }

  -- The requests received so far: list of {head=, body=, method=, path=, headers={lower=value}}
  function srv:requests()
    local lf = io.open(lfile)
    if not lf then return {} end
    local text = lf:read("a")
    lf:close()
    local out = {}
    local starts = {}
    for pos in text:gmatch("()=== %d+\n") do starts[#starts + 1] = pos end
    starts[#starts + 1] = #text + 1
    for i = 1, #starts - 1 do
      local block = text:sub(starts[i], starts[i + 1] - 2):gsub("^=== %d+\n", "")
      local head, body = block:match("^(.-)\r\n\r\n(.*)$")
      head = head or block
      local r = { head = head, body = body or "", headers = {} }
      r.method, r.path = head:match("^(%S+) (%S+)")
      for name, value in head:gmatch("\n([^:\r\n]+):%s*([^\r\n]*)") do
        r.headers[name:lower()] = value
      end
      out[#out + 1] = r
    end
    return out
  end

  -- Idempotent; also runs on collection or scope exit, so a server left
  -- behind by a failing check is killed before its pipe is closed (closing
  -- the pipe of a live server would block until it times out).
  function srv:stop()
    if self.stopped then return end
    self.stopped = true
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pipe:close()
    os.remove(sfile)
    os.remove(lfile)
  end
  return setmetatable(srv, { __gc = srv.stop, __close = srv.stop })
end

function M.start(script, seconds) return start(script, seconds) end

--- A hostile server: mock.hostile "echo-auth" (modes in tests/tools/mockhttp.c).
function M.hostile(mode, seconds) return start(nil, seconds, mode) end

--- A private redis-server on a free loopback port in a temporary directory
-- (tests/tools/redis_server.sh), stopped at scope exit, on collection, or
-- after opts.seconds (default 120) whatever happens to the test:
--   local r <close> = mock.redis { password = "pw" }
--   r.url  r.port  r:stop()  r:restart()  r:cli("GET", "k") -> output text
-- opts.args: more redis-server options (one shell-quoted string).
-- Raises with a clear message when redis-server is not installed.
function M.redis(opts)
  opts = opts or {}
  local root = os.getenv("LLMRUN_SOURCE_DIR") or "."
  local dir = os.tmpname()
  os.remove(dir)
  local srv = { dir = dir, seconds = opts.seconds or 120, password = opts.password }
  local extra = (opts.password and ("--requirepass '" .. opts.password .. "'") or "")
    .. " " .. (opts.args or "")
  local function launch(port)
    local p = assert(io.popen(("REDIS_TEST_PASSWORD='%s' bash %s/tests/tools/redis_server.sh '%s' %d %d %s 2>&1")
      :format(opts.password or "", root, dir, srv.seconds, port or 0, extra)))
    local out = p:read("a")
    p:close()
    local port_s, pid = out:match("^(%d+) (%d+)")
    if not port_s then error("cannot start redis-server: " .. out, 3) end
    srv.port, srv.pid = tonumber(port_s), tonumber(pid)
    srv.url = ("redis://%s127.0.0.1:%d/0"):format(opts.password and (":" .. opts.password .. "@") or "",
      srv.port)
  end
  launch(nil)
  local function kill(sig)
    if srv.pid then os.execute(("kill -%s %d 2>/dev/null"):format(sig, srv.pid)) end
    -- wait until the port no longer answers (at most ~2 s)
    for _ = 1, 40 do
      if os.execute(("redis-cli -p %d ping >/dev/null 2>&1"):format(srv.port)) ~= true then break end
      os.execute("sleep 0.05")
    end
    srv.pid = nil
  end
  --- Runs redis-cli against the server; returns its output.
  function srv:cli(...)
    local args = {}
    for i, a in ipairs { ... } do args[i] = "'" .. tostring(a):gsub("'", "'\\''") .. "'" end
    local p = assert(io.popen(("redis-cli -p %d %s %s 2>&1"):format(self.port,
      self.password and ("-a '" .. self.password .. "' --no-auth-warning") or "", table.concat(args, " "))))
    local out = p:read("a")
    p:close()
    return (out:gsub("\n$", ""))
  end
  --- Stops the server (its data goes: no persistence), keeping the port.
  function srv:kill() kill("TERM") end
  --- Starts it again on the same port, empty.
  function srv:start() launch(self.port) end
  function srv:restart() kill("TERM") launch(self.port) end
  function srv:stop()
    if self.stopped then return end
    self.stopped = true
    kill("TERM")
    os.execute("rm -rf '" .. dir .. "'")
  end
  return setmetatable(srv, { __gc = srv.stop, __close = srv.stop })
end

--- A private Redis Cluster of three masters (no replicas), each a
-- M.redis server in its own directory, slots split in three equal ranges
-- (CLUSTER ADDSLOTSRANGE, then CLUSTER MEET: faster than redis-cli
-- --cluster create), ready (cluster_state:ok on every node) when it
-- returns; stopped with its nodes:
--   local c <close> = mock.redis_cluster()
--   c.nodes[i] (M.redis servers: .url .port :cli() :kill())  c.ranges[i] = {first, last}
--   c:node_of(slot) -> i   c:id(i) -> node id
-- A node that fails is noticed by the others within a second
-- (cluster-node-timeout 1000), and they go on serving their own slots
-- (cluster-require-full-coverage no). Raises when the cluster does not
-- form within 15 s.
function M.redis_cluster(opts)
  opts = opts or {}
  local c = { nodes = {}, ranges = { { 0, 5460 }, { 5461, 10922 }, { 10923, 16383 } } }
  function c:stop()
    for _, n in ipairs(self.nodes) do n:stop() end
  end
  setmetatable(c, { __gc = c.stop, __close = c.stop })
  for i = 1, 3 do
    c.nodes[i] = M.redis { seconds = opts.seconds, args = "--cluster-enabled yes "
      .. "--cluster-config-file nodes.conf --cluster-node-timeout 1000 "
      .. "--cluster-require-full-coverage no" }
  end
  for i, n in ipairs(c.nodes) do
    local out = n:cli("CLUSTER", "ADDSLOTSRANGE", c.ranges[i][1], c.ranges[i][2])
    if out ~= "OK" then c:stop() error("CLUSTER ADDSLOTSRANGE: " .. out, 2) end
  end
  for i = 2, 3 do c.nodes[1]:cli("CLUSTER", "MEET", "127.0.0.1", c.nodes[i].port) end
  local ok = 0
  for _ = 1, 300 do
    ok = 0
    for _, n in ipairs(c.nodes) do
      if n:cli("CLUSTER", "INFO"):find("cluster_state:ok", 1, true)
        and select(2, n:cli("CLUSTER", "NODES"):gsub("master", "")) == 3 then
        ok = ok + 1
      end
    end
    if ok == 3 then break end
    os.execute("sleep 0.05")
  end
  if ok < 3 then c:stop() error("the Redis Cluster did not form in 15 s", 2) end
  function c:node_of(slot)
    for i, r in ipairs(self.ranges) do if slot >= r[1] and slot <= r[2] then return i end end
  end
  function c:id(i) return self.nodes[i]:cli("CLUSTER", "MYID") end
  return c
end

return M
