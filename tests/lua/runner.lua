-- Runs one Lua test file inside llmrun: llmrun tests/lua/runner.lua FILE
-- A test file gets the `T` table (also as require "testing") and registers
-- cases with T.test(name, fn); each case runs in order, inside the script's
-- task, so it may wait (llm.sleep, model calls). Prints each failure with
-- its traceback and "N passed, N failed"; exits 1 on any failure.
-- TEST_FILTER=pattern runs only the matching cases; TEST_TIMES=1 prints
-- each case's wall time on stderr (to find the slow ones).
local file = assert(arg[1], "usage: llmrun tests/lua/runner.lua FILE")
local dir = file:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path

local T = {}
local cases = {}

function T.test(name, fn)
  cases[#cases + 1] = { name = name, fn = fn }
end

local function show(v)
  return llm.inspect(v, { depth = 4 })
end

local function deep_equal(a, b, seen)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then
    return a ~= a and b ~= b -- NaN equals NaN here
  end
  seen = seen or {}
  if seen[a] == b then return true end
  seen[a] = b
  for k, v in pairs(a) do
    if not deep_equal(v, b[k], seen) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

function T.eq(got, want, what)
  if not deep_equal(got, want) then
    error(("%sgot %s, want %s"):format(what and (what .. ": ") or "", show(got), show(want)), 2)
  end
end

function T.ok(v, what)
  if not v then error((what or "expected a true value") .. ", got " .. show(v), 2) end
  return v
end

function T.near(got, want, tol, what)
  if type(got) ~= "number" or math.abs(got - want) > tol then
    error(("%sgot %s, want %s +- %s"):format(what and (what .. ": ") or "", show(got), show(want), tol), 2)
  end
end

-- T.err(fn, pattern, ...) expects fn(...) to raise an error whose text
-- matches pattern (plain find); returns the error.
function T.err(fn, pattern, ...)
  local ok, err = pcall(fn, ...)
  if ok then error("expected an error matching '" .. tostring(pattern) .. "'", 2) end
  if pattern and not tostring(err):find(pattern, 1, true) then
    error(("error '%s' does not contain '%s'"):format(tostring(err), pattern), 2)
  end
  return err
end

-- Runs `llmrun` (this binary) with shell-quoted args; returns status, stdout, stderr.
-- opts: stdin (text), env ({NAME = value})
function T.llmrun(args, opts)
  opts = opts or {}
  local bin = os.getenv("LLMRUN") or "llmrun"
  local tmp = os.tmpname()
  local env = ""
  for k, v in pairs(opts.env or {}) do env = env .. ("%s='%s' "):format(k, v) end
  local cmd = ("%s%s %s 2>%s"):format(env ~= "" and "env " .. env or "", bin, args, tmp)
  local inp
  if opts.stdin then
    inp = os.tmpname()
    local f = assert(io.open(inp, "w")); f:write(opts.stdin); f:close()
    cmd = cmd .. " <" .. inp
  end
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local _, _, status = p:close()
  local f = io.open(tmp); local err = f and f:read("a") or ""; if f then f:close() end
  os.remove(tmp)
  if inp then os.remove(inp) end
  return status, out, err
end

-- A fresh path for a sqlite database (the file does not exist yet).
function T.tmpdb()
  local p = os.tmpname()
  os.remove(p)
  return p .. ".db"
end

-- Removes a sqlite database with its WAL and shared-memory files.
function T.remove_db(p)
  for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(p .. suffix) end
end

-- A fresh empty directory.
function T.tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

-- Writes text to path (binary, as given).
function T.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- The contents of path, or `missing` (nil unless given) when it cannot be read.
function T.read_file(path, missing)
  local f = io.open(path, "rb")
  if not f then return missing end
  local s = f:read("a")
  f:close()
  return s
end

-- Runs n copies of a script at once (each gets its index as arg[1], the
-- call log off) with cmd (default: this llmrun); returns their stdouts,
-- stderrs and exit statuses.
function T.run_many(n, code, cmd)
  local bin = cmd or os.getenv("LLMRUN") or "llmrun"
  local dir = T.tmpdir()
  T.write_file(dir .. "/s.lua", code)
  local parts = {}
  for i = 1, n do
    parts[#parts + 1] = ("(LLMRUN_LOG=0 %s %s/s.lua %d >%s/out%d 2>%s/err%d; echo $? >%s/st%d) &")
      :format(bin, dir, i, dir, i, dir, i, dir, i)
  end
  os.execute(table.concat(parts, " ") .. " wait")
  local outs, errs, sts = {}, {}, {}
  for i = 1, n do
    outs[i], errs[i] = T.read_file(dir .. "/out" .. i, ""), T.read_file(dir .. "/err" .. i, "")
    sts[i] = tonumber(T.read_file(dir .. "/st" .. i, ""))
  end
  os.execute("rm -rf '" .. dir .. "'")
  return outs, errs, sts
end

package.loaded.testing = T

local chunk = assert(loadfile(file))
chunk(T)

local filter = os.getenv("TEST_FILTER")
local times = os.getenv("TEST_TIMES") -- set: each case's wall time on stderr
local passed, failed = 0, 0
for _, c in ipairs(cases) do
  if not filter or c.name:find(filter, 1, true) then
    local t0 = llm.now()
    local ok, err = xpcall(c.fn, debug.traceback)
    if times then io.stderr:write(("%7.3f s  %s\n"):format(llm.now() - t0, c.name)) end
    if ok then
      passed = passed + 1
    else
      failed = failed + 1
      io.stderr:write(("FAIL %s: %s\n"):format(c.name, tostring(err)))
    end
  end
end
print(("%s: %d passed, %d failed"):format(file:match("[^/]*$"), passed, failed))
if failed > 0 or passed == 0 then llm.exit(1) end
