-- Every runtime failure of a C binding reaches Lua the same way: nil and an
-- llm.error table (llm.is_error holds, err.kind names what failed, err.status
-- the reason where there is one, tostring reads well), as the README's
-- "Errors" promises (src/lmod_util.h). Misuse still raises.
local T = ...
local tmpdir = T.tmpdir

local function is_typed(err, kind, status)
  T.ok(llm.is_error(err), "an llm.error, got " .. type(err))
  T.eq(err.kind, kind)
  if status then T.eq(err.status, status) end
  T.eq(type(err.message), "string")
  T.ok(tostring(err):find(err.message, 1, true), tostring(err))
end

T.test("the cache store", function()
  local C = require "_llm.cache"
  local dir = tmpdir()
  local db, err = C.open { path = dir } -- a directory is no database
  T.eq(db, nil)
  is_typed(err, "cache")
  T.ok(err.status ~= nil, "a status names the failure")
  T.err(function() C.open { path = dir .. "/x.db", memory_bytes = -1 } end, "'memory_bytes' must be an integer >= 0")
  T.err(function() C.open { path = 3 } end, "'path' must be a string")
end)

T.test("the cache key's canonical form", function()
  local none, err = require("_llm.canon").encode { f = print }
  T.eq(none, nil)
  is_typed(err, "cache", "uncacheable")
end)

T.test("the call log: open, read, find a run", function()
  local calllog = require "_llm.calllog"
  local dir = tmpdir()
  local log, err = calllog.open(dir) -- a directory, not a file
  T.eq(log, nil)
  is_typed(err, "log")
  local reader, rerr = calllog.reader(dir .. "/none/runs.db")
  T.eq(reader, nil)
  is_typed(rerr, "log", "missing")
  local empty = assert(calllog.open(dir .. "/empty.db"))
  empty:close()
  local r = assert(calllog.reader(dir .. "/empty.db"))
  local id, why = r:find_run("zz")
  T.eq(id, nil)
  is_typed(why, "log", "none")
  r:close()
  T.err(function() calllog.open(dir .. "/x.db", { batch_ms = "soon" }) end, "'batch_ms' must be an integer")
end)

T.test("the simulator's server", function()
  local s, err = require("_llm.sim").start { host = "10.1.2.3" }
  T.eq(s, nil)
  is_typed(err, "sim")
  T.err(function() require("_llm.sim").start({}, { ttft_ms = "slow" }) end, "'ttft_ms' must be a number")
end)

T.test("the host's directories", function()
  local host = require "_llm.host"
  local ok, err = host.mkdir_p("/proc/llmrun-cannot-exist/x")
  T.eq(ok, nil)
  is_typed(err, "io")
end)

T.test("the batch record", function()
  local B = require "_llm.batchstore"
  local dir = tmpdir()
  local s, err = B.open(dir) -- a directory, not a file
  T.eq(s, nil)
  is_typed(err, "batch_store")
  local st = assert(B.open(dir .. "/b.db"))
  local rec = { batch_id = "b1", hash = "h", provider = "openai", base_url = "http://x" }
  T.eq(st:put(rec), true)
  rec.requests = "many"
  T.err(function() st:put(rec) end, "'requests' must be an integer")
  rec.requests, rec.colour = 3, "blue"
  T.err(function() st:put(rec) end, "unknown key 'colour'")
  st:close()
  T.err(function() st:all() end, "closed batch record")
end)

T.test("the sqlite files of cassettes", function()
  local sqlite = require "_llm.sqlite"
  local dir = tmpdir()
  local db, err = sqlite.open(dir .. "/none.db", "r")
  T.eq(db, nil)
  is_typed(err, "sqlite", "missing")
  local f = assert(io.open(dir .. "/text.db", "w"))
  f:write(("not a database\n"):rep(100))
  f:close()
  db, err = sqlite.open(dir .. "/text.db", "rw")
  T.eq(db, nil)
  is_typed(err, "sqlite", "notadb")
  db = assert(sqlite.open(dir .. "/ok.db", "create"))
  local rows, qerr = db:query("SELECT * FROM no_such_table")
  T.eq(rows, nil)
  is_typed(qerr, "sqlite", "error")
  T.err(function() db:exec("SELECT ?") end, "1 parameters, 0 values")
  db:close()
  T.err(function() db:query("SELECT 1") end, "closed sqlite database")
end)

T.test("the replayer's server", function()
  local server, err = require("_llm.replay").start(tmpdir() .. "/no.cassette")
  T.eq(server, nil)
  is_typed(err, "replay")
end)

T.test("the gateway's HTTP server", function()
  local S = require "_llm.serve"
  local srv, err = S.listen { host = "10.1.2.3" } -- not an address of this machine
  T.eq(srv, nil)
  is_typed(err, "serve")
  T.err(function() S.listen { port = 70000 } end, "'port' must be an integer from 0 to 65535")
  T.err(function() S.listen { idle_timeout = -1 } end, "'idle_timeout' must be a number >= 0")
  T.err(function() S.listen { max_conections = 5 } end, "unknown key 'max_conections'")
end)

T.test("compressed cache values", function()
  local zlib = require "_llm.zlib"
  local z = assert(zlib.deflate(("abc"):rep(100)))
  T.eq(zlib.inflate(z, 300), ("abc"):rep(100))
  local none, err = zlib.inflate("not zlib at all", 300)
  T.eq(none, nil)
  is_typed(err, "zlib", "corrupt")
  none, err = zlib.inflate(z, -1)
  T.eq(none, nil)
  is_typed(err, "zlib", "corrupt")
  T.err(function() zlib.deflate("x", 12) end, "level from 1 to 9")
end)

T.test("Redis URLs", function()
  local none, err = require("_llm.redis").parse_url "http://not-redis"
  T.eq(none, nil)
  is_typed(err, "redis", "url")
end)
