-- llm.redis and the _llm.redis client, against a real redis-server
-- (tests/tools/redis_server.sh): replies, pipelining, writes without
-- waiting, URLs with AUTH and SELECT, scripts after NOSCRIPT, timeouts,
-- Redis down at start and restarted mid-run (no hang, clear errors),
-- cancelled waits, and many tasks at once on one connection.
local T = ...
local mock = require "mock"
local R = require "_llm.redis"
local redis = require "llm.redis"

local srv = mock.redis()

T.test("replies: strings, integers, nil as false, lists, error replies", function()
  local c = R.connect(srv.url)
  T.eq(c:call(1, "SET", "t:a", "1"), "OK")
  T.eq(c:call(1, "GET", "t:a"), "1")
  T.eq(c:call(1, "GET", "t:missing"), false)
  T.eq(c:call(1, "INCRBY", "t:n", 41), 41)
  T.eq(c:call(1, "RPUSH", "t:l", "x", "", "z\0y"), 3)
  T.eq(c:call(1, "LRANGE", "t:l", 0, -1), { "x", "", "z\0y" })
  T.eq(c:call(1, "MGET", "t:a", "t:missing"), { "1", false })
  local v, err = c:call(1, "HSET", "t:a", "f", "v")
  T.eq(v, nil)
  T.eq(err.kind, "redis")
  T.ok(err.message:find("WRONGTYPE", 1, true), err.message)
  local _, bad = c:call(1, "NOSUCHCOMMAND")
  T.eq(bad.kind, "redis")
  T.err(function() c:call(1) end, "at least its name")
  T.err(function() c:call(1, "GET", {}) end, "string or number")
  c:close()
  T.err(function() c:call(1, "PING") end, "closed")
end)

T.test("a pipeline is one round trip; an error reply is one element", function()
  local c = R.connect(srv.url)
  local r = assert(c:pipeline(1, { { "SET", "t:p", "2" }, { "GET", "t:p" }, { "LPUSH", "t:p", "x" },
                                   { "EXISTS", "t:p" } }))
  T.eq(r[1], "OK")
  T.eq(r[2], "2")
  T.ok(llm.is_error(r[3], "redis"), "WRONGTYPE as an element")
  T.eq(r[4], 1)
  -- many tasks at once share the connection: their commands are pipelined
  local info0 = c:info()
  local out = {}
  local tasks = {}
  for i = 1, 200 do
    tasks[i] = llm.spawn(function() out[i] = c:call(2, "INCR", "t:counter") end)
  end
  for _, t in ipairs(tasks) do t:wait() end
  local seen = {}
  for i = 1, 200 do seen[out[i]] = true end
  for i = 1, 200 do T.ok(seen[i], "INCR result " .. i) end
  T.eq(c:info().connects, info0.connects, "one connection for all")
end)

T.test("send does not wait; its ticket says how it went", function()
  local c = R.connect(srv.url)
  local t = assert(c:send("SET", "t:s", "v"))
  local bad = assert(c:send("LPUSH", "t:s", "x"))
  T.eq(t:status(), "pending")
  T.eq(c:call(1, "GET", "t:s"), "v", "in order with what follows")
  T.eq(t:status(), "ok")
  local st, msg = bad:status()
  T.eq(st, "error")
  T.ok(msg:find("WRONGTYPE", 1, true))
  -- on an open connection a send leaves at once, even if the task then
  -- blocks without yielding
  local c2 = R.connect(srv.url)
  T.eq(c2:call(1, "PING"), "PONG")
  c2:send("SET", "t:now", "1")
  T.eq(srv:cli("GET", "t:now"), "1")
end)

T.test("every repeats a command until stopped", function()
  local c = R.connect(srv.url)
  local rp = c:every(0.02, "INCR", "t:every")
  llm.sleep(0.15)
  rp:stop()
  local n = tonumber(c:call(1, "GET", "t:every"))
  T.ok(n >= 3 and n <= 9, "ticks: " .. tostring(n))
  llm.sleep(0.06)
  T.eq(tonumber(c:call(1, "GET", "t:every")), n, "stopped")
  rp:stop() -- twice is harmless
end)

T.test("URLs: parts, defaults, credentials never shown, refusals", function()
  local u = assert(R.parse_url "redis://user:p%40ss@example.com:6390/3")
  T.eq({ u.host, u.port, u.db, u.user, u.has_password }, { "example.com", 6390, 3, "user", true })
  T.eq(u.display, "redis://example.com:6390/3")
  u = assert(R.parse_url "redis://localhost")
  T.eq({ u.host, u.port, u.db, u.has_password }, { "localhost", 6379, 0, false })
  u = assert(R.parse_url "redis://[::1]:7000/1")
  T.eq({ u.host, u.port, u.db }, { "::1", 7000, 1 })
  u = assert(R.parse_url "redis://:secret@h/2")
  T.eq({ u.user, u.has_password, u.db }, { "", true, 2 })
  u = assert(R.parse_url "unix:///run/redis.sock?db=4")
  T.eq({ u.socket, u.db }, { "/run/redis.sock", 4 })
  for _, bad in ipairs { "http://x", "redis://h:0", "redis://h:99999", "redis://h/x", "redis://h?a=1",
                         "rediss://h", "redis://:%zz@h", "unix://rel" } do
    local ok, err = R.parse_url(bad)
    T.eq(ok, nil, bad)
    T.eq({ err.kind, err.status }, { "redis", "url" }, bad)
    T.ok(not err.message:find("secret", 1, true))
  end
  local _, tls = R.parse_url "rediss://:secret@h"
  T.ok(tls.message:find("TLS", 1, true) and not tls.message:find("secret", 1, true), tls.message)
  T.err(function() R.connect "redis://h:0" end, "port")
  T.eq(redis.key("cache:x", "v", "ab"), "llmrun:{cache:x}:v:ab")
  T.err(function() redis.key("a}b") end, "hash tag")
end)

T.test("AUTH and SELECT come from the URL; a wrong password says so", function()
  local p <close> = mock.redis { password = "pw 1" }
  local url = ("redis://:%s@127.0.0.1:%d/3"):format("pw%201", p.port)
  local c = R.connect(url)
  T.eq(c:call(1, "SET", "t:db3", "x"), "OK")
  T.eq(p:cli("-n", "3", "GET", "t:db3"), "x")
  T.eq(p:cli("-n", "0", "EXISTS", "t:db3"), "0")
  local wrong = R.connect(("redis://:nope@127.0.0.1:%d/0"):format(p.port))
  local v, err = wrong:call(1, "PING")
  T.eq(v, nil)
  T.ok(err.message:find("AUTH", 1, true), err.message)
  T.ok(not tostring(err):find("nope", 1, true), "no password in the message")
end)

T.test("scripts: EVALSHA, and after SCRIPT FLUSH (NOSCRIPT) loaded again", function()
  local cl = redis.client(srv.url)
  local s = redis.script "return redis.call('INCRBY', KEYS[1], ARGV[1])"
  T.eq(s:run(cl, { "t:script" }, { 5 }), 5)
  T.ok(s.sha and #s.sha == 40)
  T.eq(cl:call("SCRIPT", "FLUSH"), "OK")
  T.eq(s:run(cl, { "t:script" }, { 2 }), 7)
  local t = s:send(cl, { "t:script" }, { 3 })
  T.eq(cl:call("GET", "t:script"), "10")
  T.eq(t:status(), "ok")
  local _, err = redis.script("return redis.call('NOPE')"):run(cl, {}, {})
  T.eq(err.kind, "redis")
end)

T.test("a command that outlives its timeout fails as a timeout and resets the connection", function()
  local c = R.connect(srv.url)
  local t0 = llm.now()
  local v, err = c:call(0.2, "BLPOP", "t:never", 3)
  local took = llm.now() - t0
  T.eq(v, nil)
  T.eq(err.kind, "timeout")
  T.ok(took >= 0.19 and took < 1.5, "took " .. took)
  T.eq(c:info().timeouts, 1)
  -- after the backoff the client connects again
  llm.sleep(0.1)
  T.eq(c:call(1, "PING"), "PONG")
end)

T.test("a task cancelled while it waits leaves the client usable", function()
  local c = R.connect(srv.url)
  local t = llm.spawn(function() return c:call(5, "BLPOP", "t:cancel", 2) end)
  llm.sleep(0.05)
  t:cancel()
  local ok, err = t:wait()
  T.eq(ok, false)
  T.eq(err.kind, "cancelled")
  local c2 = R.connect(srv.url)
  T.eq(c2:call(1, "RPUSH", "t:cancel", "x"), 1)
  T.eq(c:call(3, "PING"), "PONG", "the abandoned BLPOP's reply is skipped")
end)

T.test("Redis down at start: a clear error at once, no hang; up again: it works", function()
  local dead <close> = mock.redis()
  dead:kill()
  local c = R.connect(("redis://127.0.0.1:%d/0"):format(dead.port), { backoff_min = 0.05, backoff_max = 0.2 })
  local t0 = llm.now()
  local v, err = c:call(1, "PING")
  T.eq(v, nil)
  T.eq(err.kind, "transport")
  T.ok(err.message:find("refused", 1, true), err.message)
  local _, again = c:call(1, "PING")
  T.ok(again.message:find("unreachable", 1, true) and again.message:find("next try", 1, true), again.message)
  T.ok(llm.now() - t0 < 0.5, "fails fast")
  dead:start()
  local deadline, ok = llm.now() + 3, nil
  while not ok and llm.now() < deadline do
    ok = c:call(1, "PING")
    if not ok then llm.sleep(0.05) end
  end
  T.eq(ok, "PONG")
end)

T.test("Redis restarted mid-run: in-flight commands fail, later ones succeed", function()
  local r <close> = mock.redis()
  local c = R.connect(r.url, { backoff_min = 0.05, backoff_max = 0.2 })
  T.eq(c:call(1, "SET", "k", "1"), "OK")
  local blocked = llm.spawn(function() return c:call(5, "BLPOP", "t:restart", 4) end)
  llm.sleep(0.05)
  r:restart()
  local ok, v, err = blocked:wait()
  T.eq(ok, true)
  T.eq(v, nil)
  T.eq(err.kind, "transport")
  local deadline, got = llm.now() + 3, nil
  while got == nil and llm.now() < deadline do
    got = c:call(1, "GET", "k")
    if got == nil then llm.sleep(0.05) end
  end
  T.eq(got, false, "an empty server after the restart")
  T.ok(c:info().connects >= 2)
end)

T.test("at exit, writes sent without waiting reach Redis", function()
  local code = ("local c = llm.redis.client(%q); for i = 1, 2000 do c:send('RPUSH', 't:exit', i) end"):format(srv.url)
  local status = T.llmrun("-e " .. ("%q"):format(code))
  T.eq(status, 0)
  T.eq(srv:cli("LLEN", "t:exit"), "2000")
end)

T.test("the process stays responsive: a loop of round trips is fast", function()
  local c = R.connect(srv.url)
  local t0 = llm.now()
  for _ = 1, 500 do c:call(1, "GET", "t:a") end
  local per = (llm.now() - t0) / 500 * 1e6
  T.ok(per < 2000, ("%.0f us per round trip"):format(per))
end)
