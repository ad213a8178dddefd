# The command line: options, exit codes, error messages, arg, stdin, REPL
# on a pipe, LUA_PATH, SIGINT, and an installed copy finding its library.
source "$(dirname "$0")/lib.sh"

run -e 'print(1+1)'
expect_status 0; expect_out "2"; expect_err_empty

run_in 'print(3)' -
expect_status 0; expect_out "3"

run_in 'print(4)'            # no arguments, stdin not a terminal: run stdin
expect_status 0; expect_out "4"

run --help
expect_status 0; expect_out_has "usage: llmrun"; expect_err_empty

run --version
expect_status 0; expect_out_has "llmrun "

run nosuchfile.lua
expect_status 2; expect_err_has "cannot open nosuchfile.lua"

run -x
expect_status 2; expect_err_has "unrecognized option '-x'"

run -e
expect_status 2; expect_err_has "needs an argument"

printf 'local x = \n' >"$TMP/syntax.lua"
run "$TMP/syntax.lua"
expect_status 1; expect_err_has "syntax.lua:2:"

printf 'local function g() error("deep failure") end\nlocal function f() g() end\nf()\n' >"$TMP/rt.lua"
run "$TMP/rt.lua"
expect_status 1; expect_err_has "rt.lua:1: deep failure"; expect_err_has "stack traceback"

# an error inside a nested task, waited on: re-raised with both tracebacks
cat >"$TMP/nested.lua" <<'LUA'
local r = llm.map({1, 2}, function(x)
  return llm.spawn(function() if x == 2 then error("nested boom") end return x end)
end)
for _, t in ipairs(r) do
  local ok, err = t:wait()
  if not ok then error(err, 0) end
end
LUA
run "$TMP/nested.lua"
expect_status 1; expect_err_has "nested boom"

# a detached task that fails: reported as uncaught, exit status 1
run -e 'llm.spawn(function() error("lost error") end) llm.sleep(0.01) print("main done")'
expect_status 1; expect_out "main done"; expect_err_has "uncaught error in task"; expect_err_has "lost error"

# tasks still running when the script ends are cancelled, with a warning
run -e 'llm.spawn(function() llm.sleep(100) end) print("bye")'
expect_status 0; expect_out "bye"; expect_err_has "1 task still running when the script ended was cancelled"

# tasks waiting on each other forever: a clear message, not a hang
run -e 'local a; a = llm.spawn(function() llm.suspend() end) a:wait()'
expect_status 1; expect_err_has "can never finish"

run -e 'llm.exit(3)'
expect_status 3

# llm.exit in any task ends the run with its code
run -e 'llm.spawn(function() llm.exit(4) end) llm.sleep(2) print("not reached")'
expect_status 4; expect_out ""

run_in $'llm.exit(5)\nprint("not reached")\n' -i
expect_status 5; expect_out ""

run -e 'llm.map({1}, 42)'
expect_status 1; expect_err_has "function expected"

run -e 'llm.map({1}, print, {concurrency = -2})'
expect_status 1; expect_err_has "positive integer"

# script arguments in arg and ...
printf 'print(arg[0] ~= nil, arg[1], arg[2], select("#", ...), ...)\n' >"$TMP/args.lua"
run "$TMP/args.lua" one two
expect_status 0; expect_out "$(printf 'true\tone\ttwo\t2\tone\ttwo')"

# -e runs before the script, in order
run -e 'x = 10' -e 'x = x + 1' "$TMP/args.lua"
expect_status 0

# REPL on a pipe (-i): expressions printed, multi-line statements, errors
run_in $'x = 20\nfunction f()\n  return x + 1\nend\nf()\nerror("in repl")\n=x * 2\n' -i
expect_status 0; expect_out "$(printf '21\n40')"; expect_err_has "in repl"

# ... and on a regular file or /dev/null, which epoll cannot watch (it hung)
printf 'x = 5\n=x + 1\n' >"$TMP/repl_in.lua"
status=0; timeout 10 "$LLMRUN" -i <"$TMP/repl_in.lua" >"$TMP/out" 2>"$TMP/err" || status=$?
out=$(cat "$TMP/out")
expect_status 0; expect_out "6"

# LUA_PATH is honoured (;; is the default path)
mkdir -p "$TMP/mods"
printf 'return {answer = 42}\n' >"$TMP/mods/mymod.lua"
LUA_PATH="$TMP/mods/?.lua;;" run -e 'print(require("mymod").answer)'
expect_status 0; expect_out "42"
LUA_PATH_5_4="$TMP/mods/?.lua;;" run -e 'print(require("mymod").answer)'
expect_status 0; expect_out "42"

# -l NAME sets the global NAME, as lua.c does, whatever characters it has
printf 'return {answer = 7}\n' >"$TMP/mods/my-mod.lua"
LUA_PATH="$TMP/mods/?.lua;;" run -l my-mod -e 'print(_G["my-mod"].answer)'
expect_status 0; expect_out "7"
LUA_PATH="$TMP/mods/?.lua;;" run -l mymod -e 'print(mymod.answer)'
expect_status 0; expect_out "42"

# cjson is always available
run -e 'print(require("cjson").encode({a = 1}))'
expect_status 0; expect_out '{"a":1}'

# SIGINT: running work is cancelled, exit status 130
"$LLMRUN" -e 'print("started") io.stdout:flush() llm.sleep(30)' >"$TMP/out" 2>"$TMP/err" &
pid=$!
for _ in $(seq 50); do grep -q started "$TMP/out" && break; sleep 0.05; done
kill -INT $pid
wait $pid
status=$?
out=$(cat "$TMP/out"); err=$(cat "$TMP/err")
expect_status 130; expect_err_has "interrupted"

# an installed copy finds its Lua library relative to itself
build_dir=$(dirname "$LLMRUN")
if cmake --install "$build_dir" --prefix "$TMP/prefix" >/dev/null 2>&1; then
  ok
  "$TMP/prefix/bin/llmrun" -e 'print(package.path:match("^[^;]*"))' >"$TMP/out" 2>"$TMP/err"
  status=$?; out=$(cat "$TMP/out"); err=$(cat "$TMP/err")
  expect_status 0; expect_out "$TMP/prefix/share/llmrun/lualib/?.lua"
else
  status=1; fail "cmake --install failed"
fi

finish
