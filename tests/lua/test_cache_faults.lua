-- The cache under bad conditions (../shared/RELIABILITY.md §A 40-45): a
-- corrupt file, a newer schema, a read-only file, a full disk, a huge
-- response, two processes writing at once, kill -9 mid-run. The call
-- always returns its result; a failure to cache is reported once.
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local tmpdir = T.tmpdir

local SRC = os.getenv("LLMRUN_SOURCE_DIR") or "."
local LLMRUN = os.getenv("LLMRUN") or "llmrun"

local function chat_body(text)
  return cjson.encode {
    choices = { { index = 0, message = { role = "assistant", content = text }, finish_reason = "stop" } },
    usage = { prompt_tokens = 3, completion_tokens = 1, total_tokens = 4 },
  }
end

local function reply(text) return "status 200\nheader Content-Type: application/json\nbody " .. chat_body(text) .. "\n" end

local write = T.write_file

local read = T.read_file

-- A script that makes n calls with distinct prompts through a cache and
-- prints each answer, then the cached flag of a repeat of the first.
local function calls_script(url, cache_expr, n)
  return ([[
local c = %s
local m = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = %q, api_key = "k", cache = c,
                      retry_scale = 0.01 }
for i = 1, %d do print(assert(m:chat { user = "q" .. i, temperature = 0 }).text) end
print(assert(m:chat { user = "q1", temperature = 0 }).cached)
]]):format(cache_expr, url, n)
end

local function run_script(text, env, prefix)
  local file = os.tmpname()
  write(file, text)
  local st, out, err = T.llmrun((prefix and "" or "") .. file, { env = env })
  os.remove(file)
  return st, out, err
end

local function count(s, pattern)
  local _, n = s:gsub(pattern, "")
  return n
end

T.test("a corrupt cache file: open says so; cache = true warns once and goes on", function()
  local dir = tmpdir()
  local junk = {}
  for i = 1, 4096 do junk[i] = string.char((i * 7 + 13) % 256) end
  write(dir .. "/garbage.db", table.concat(junk))
  local c, err = llm.cache.open { path = dir .. "/garbage.db" }
  T.eq(c, nil)
  T.eq(err.kind, "cache")
  T.eq(err.status, "corrupt")
  T.ok(err.message:find("not a usable sqlite database", 1, true), err.message)

  local srv = mock.start(reply("fine"))
  assert(os.execute("mkdir -p '" .. dir .. "/xdg/llmrun'"))
  write(dir .. "/xdg/llmrun/cache.db", table.concat(junk))
  local st, out, errtext = run_script(calls_script(srv.url .. "/v1", "true", 3),
                                      { XDG_CACHE_HOME = dir .. "/xdg" })
  T.eq(st, 0, errtext)
  T.eq(out, "fine\nfine\nfine\nfalse\n")
  T.eq(count(errtext, "llmrun: cache:"), 1, errtext)
  T.ok(errtext:find("not a usable sqlite database", 1, true), errtext)
  -- the file was left alone
  T.eq(read(dir .. "/xdg/llmrun/cache.db"), table.concat(junk))
  srv:stop()
  os.execute("rm -rf '" .. dir .. "'")
end)

T.test("a cache whose pages are damaged: answers still come, one warning", function()
  local dir = tmpdir()
  assert(os.execute("mkdir -p '" .. dir .. "/xdg/llmrun'"))
  local path = dir .. "/xdg/llmrun/cache.db"
  local srv = mock.start(reply("fresh"))
  -- a cache holding the answers to q1..q300, written and closed
  local c = assert(llm.cache.open { path = path })
  local m = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = srv.url .. "/v1",
                        api_key = "k", cache = c }
  for i = 1, 300 do assert(m:chat { user = "q" .. i .. (" pad"):rep(100), temperature = 0 }) end
  c:close()
  -- overwrite every third 4 KiB page after the first two with noise
  local bytes = assert(read(path))
  local pages = {}
  for i = 0, #bytes // 4096 - 1 do
    local page = bytes:sub(i * 4096 + 1, (i + 1) * 4096)
    if i >= 2 and i % 3 == 0 then page = ("\x5a\xa5"):rep(2048) end
    pages[#pages + 1] = page
  end
  write(path, table.concat(pages) .. bytes:sub(#pages * 4096 + 1))
  local script = calls_script(srv.url .. "/v1", "true", 1):gsub('"q" %.%. i', '"q" .. i .. (" pad"):rep(100)')
    :gsub('"q1"', '"q1" .. (" pad"):rep(100)')
  script = script:gsub("for i = 1, 1 do", "for i = 1, 40 do")
  local st, out, err = run_script(script, { XDG_CACHE_HOME = dir .. "/xdg" })
  T.eq(st, 0, err)
  local answers = select(2, out:gsub("fresh\n", ""))
  T.eq(answers, 40, out)
  T.eq(count(err, "llmrun: cache:"), 1, err)
  srv:stop()
  os.execute("rm -rf '" .. dir .. "'")
end)

T.test("a database from a newer llmrun is refused, and left as it was", function()
  local dir = tmpdir()
  local path = dir .. "/newer.db"
  local c = assert(llm.cache.open { path = path })
  c:close() -- the last connection checkpoints the WAL into the file
  -- the user version is the big-endian integer at offset 60 of the header
  -- (https://www.sqlite.org/fileformat2.html#database_header)
  local bytes = assert(read(path))
  T.eq(string.unpack(">I4", bytes, 61), 3)
  local patched = bytes:sub(1, 60) .. string.pack(">I4", 99) .. bytes:sub(65)
  write(path, patched)
  local c2, err = llm.cache.open { path = path }
  T.eq(c2, nil)
  T.eq(err.status, "newer_schema")
  T.ok(err.message:find("newer llmrun (cache schema 99; this llmrun knows up to 3)", 1, true), err.message)
  T.eq(read(path), patched)
  local st, out = T.llmrun(("cache stats --path %q"):format(path))
  T.eq(st, 1)
  T.eq(out, "")
  os.execute("rm -rf '" .. dir .. "'")
end)

T.test("a read-only cache: hits are served, storing fails once, calls go on", function()
  local dir = tmpdir()
  local path = dir .. "/ro.db"
  local srv = mock.start(reply("answer"))
  -- fill it with q1
  local st, out = run_script(calls_script(srv.url .. "/v1", ("llm.cache.open{path=%q}"):format(path), 1))
  T.eq(st, 0)
  T.eq(out, "answer\nexact\n")
  local requests = #srv:requests()
  local st2, out2, err2 = run_script(calls_script(srv.url .. "/v1",
    ("llm.cache.open{path=%q, readonly=true}"):format(path), 4))
  T.eq(st2, 0, err2)
  T.eq(out2, "answer\nanswer\nanswer\nanswer\nexact\n")
  T.eq(#srv:requests(), requests + 3, "q1 was a hit")
  T.eq(count(err2, "llmrun: cache:"), 1, err2)
  T.ok(err2:find("read-only", 1, true), err2)
  -- file permissions bind only a user that is not root
  local id = io.popen("id -u"):read("l")
  if id ~= "0" then
    os.execute("chmod 0400 '" .. path .. "'")
    local st3, out3, err3 = run_script(calls_script(srv.url .. "/v1", ("llm.cache.open{path=%q}"):format(path), 2))
    T.eq(st3, 0, err3)
    T.eq(out3, "answer\nanswer\nexact\n")
    T.eq(count(err3, "llmrun: cache:"), 1, err3)
    os.execute("chmod 0600 '" .. path .. "'")
  else
    print("note: running as root: file modes cannot make the cache read-only; readonly = true stands in")
  end
  srv:stop()
  os.execute("rm -rf '" .. dir .. "'")
end)

for _, delay in ipairs { 0, 0.05 } do
T.test(("a full disk: every call returns its result, one warning, the file stays intact (write_delay %g)")
    :format(delay), function()
  local dir = tmpdir()
  local path = dir .. "/full.db"
  local big = string.rep("x", 150 * 1024)
  local srv = mock.start(reply(big))
  local file = dir .. "/fill.lua"
  -- with a write_delay the answers fail together, when their batch is written
  write(file, ([[
local c = assert(llm.cache.open{path=%q, write_delay = ]] .. delay .. [[})
local m = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = %q, api_key = "k", cache = c }
local ok = 0
for i = 1, 12 do
  local r = assert(m:chat { user = "q" .. i, temperature = 0 })
  if #r.text == %d then ok = ok + 1 end
end
print(ok, c:stats().errors > 0)
]]):format(path, srv.url .. "/v1", #big))
  -- a 1 MB file size limit fails writes the way a full disk does (SIGXFSZ ignored)
  local cmd = ("bash -c \"trap '' XFSZ; ulimit -f 1024; exec '%s' '%s'\" 2>'%s/err'"):format(LLMRUN, file, dir)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  local err = read(dir .. "/err") or ""
  T.ok(ok, err)
  T.eq(out, "12\ttrue\n")
  T.eq(count(err, "llmrun: cache:"), 1, err)
  T.ok(err:find("storing failed", 1, true), err)
  local st, check = T.llmrun(("cache check --path %q"):format(path))
  T.eq(st, 0)
  T.ok(check:find(": ok\n", 1, true), check)
  srv:stop()
  os.execute("rm -rf '" .. dir .. "'")
end)
end

T.test("a huge response is cached whole; over max_entry_bytes it is skipped quietly", function()
  local dir = tmpdir()
  local huge = {}
  for i = 1, 60000 do huge[i] = ("w%d "):format(i) end
  huge = table.concat(huge) -- about 400 KB of distinct words
  local srv = mock.start(reply(huge))
  local c = assert(llm.cache.open { path = dir .. "/huge.db" })
  local m = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = srv.url .. "/v1", api_key = "k", cache = c }
  assert(m:chat "big")
  local r = assert(m:chat "big")
  T.eq(r.cached, "exact")
  T.eq(r.text, huge)
  local n = 0
  for d in m:stream "big" do n = n + 1 end
  T.eq(n, 60000)
  local small = assert(llm.cache.open { path = dir .. "/small.db", max_entry_bytes = 100000 })
  local ms = m:with_cache(small)
  assert(ms:chat "big")
  T.eq(assert(ms:chat "big").cached, false)
  T.eq(small:stats().skipped, 2)
  T.eq(small:stats().errors, 0)
  c:close()
  small:close()
  srv:stop()
  os.execute("rm -rf '" .. dir .. "'")
end)

T.test("two processes x 1,000 cached calls at once: no SQLITE_BUSY, nothing lost", function()
  local dir = tmpdir()
  local path = dir .. "/shared.db"
  local srv = mock.start(reply("ok"))
  assert(llm.cache.open { path = path }):close()
  local function writer(who)
    local file = dir .. "/w" .. who .. ".lua"
    write(file, ([[
local c = assert(llm.cache.open{path=%q})
local m = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = %q, api_key = "k", cache = c }
local items = {}
for i = 1, 1000 do items[i] = i end
llm.map(items, function(i) return assert(m:chat { user = "%s-" .. i, temperature = 0 }) end,
        { concurrency = 32 })
local s = c:stats()
print(s.stores, s.errors)
]]):format(path, srv.url .. "/v1", who))
    return assert(io.popen(("'%s' '%s' 2>'%s/err%s'"):format(LLMRUN, file, dir, who)))
  end
  local a, b = writer("a"), writer("b")
  local out_a, out_b = a:read("a"), b:read("a")
  T.ok(a:close() and b:close())
  T.eq({ out_a, out_b }, { "1000\t0\n", "1000\t0\n" })
  T.eq(read(dir .. "/erra") .. read(dir .. "/errb"), "")
  local c = assert(llm.cache.open { path = path })
  T.eq(c:stats { all_time = true }.entries, 2000)
  c:close()
  srv:stop()
  os.execute("rm -rf '" .. dir .. "'")
end)

T.test("kill -9 in the middle of cached calls leaves the file intact", function()
  local dir = tmpdir()
  local path = dir .. "/killed.db"
  local srv = mock.start(reply("ok"))
  write(dir .. "/loop.lua", ([[
local c = assert(llm.cache.open{path=%q})
local m = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = %q, api_key = "k", cache = c }
local items = {}
for i = 1, 100000 do items[i] = i end
llm.map(items, function(i) return m:chat { user = "k" .. i, temperature = 0 } end, { concurrency = 16 })
]]):format(path, srv.url .. "/v1"))
  for round = 1, 3 do
    assert(os.execute(("'%s' '%s/loop.lua' >/dev/null 2>&1 & echo $! > '%s/pid'"):format(LLMRUN, dir, dir)))
    -- a slow (sanitizer) build may not have created the file yet: wait for
    -- it, then let some writes happen before the kill
    for _ = 1, 100 do
      local f = io.open(path)
      if f then f:close() break end
      llm.sleep(0.05)
    end
    llm.sleep(0.3 + 0.1 * round)
    local pid = assert(read(dir .. "/pid")):match("%d+")
    assert(os.execute("kill -9 " .. pid))
    llm.sleep(0.1)
    local st, out = T.llmrun(("cache check --path %q"):format(path))
    T.eq(st, 0, out)
    T.ok(out:find(": ok\n", 1, true), out)
  end
  local c = assert(llm.cache.open { path = path })
  T.ok(c:stats { all_time = true }.entries > 0)
  c:close()
  srv:stop()
  os.execute("rm -rf '" .. dir .. "'")
end)
