# Storage and input faults at the command line (issue #13, item 12): a
# damaged cache file (clear error, no traceback; `cache clear --force`
# starts a new one), a full disk under the call log (the warning names the
# real cause), an unknown simulator profile (usage error), an endless
# input to `llmrun tokens` (capped, not read into memory without limit),
# and hooks that are not functions (refused at registration).
source "$(dirname "$0")/lib.sh"
export XDG_CACHE_HOME="$TMP/cache" XDG_DATA_HOME="$TMP/data"
export LLMRUN_SIM_PROFILE=zero

# ---- a cache file with damaged pages ------------------------------------------------------
run -e 'local m = llm.model { "gpt-4o-mini", cache = true }
        for i = 1, 200 do assert(m:chat("prompt number " .. i .. (" pad"):rep(60))) end'
expect_status 0
db="$TMP/cache/llmrun/cache.db"
size=$(stat -c %s "$db")
# overwrite bytes 100 to 4,000 of every third 4 KiB page after the first two
# (the file header stays valid): with 900 bytes, now and then the damage fell
# only in the free space of the pages a command read, and it succeeded
for ((off = 8192; off < size; off += 12288)); do
  dd if=/dev/urandom of="$db" bs=1 seek=$((off + 100)) count=3900 conv=notrunc status=none
done
run cache stats
expect_status 1
expect_err_has "malformed"
expect_err_has "llmrun cache clear --force"
[[ "$err" != *traceback* ]] && ok || fail "a traceback for a damaged cache"
run cache clear
expect_status 1
expect_err_has "llmrun cache clear --force"
run cache clear --force -n default
expect_status 2
run cache clear --force
expect_status 0
expect_out_has "started a new, empty cache"
run cache stats
expect_status 0
expect_out_has "0 responses"
run cache check
expect_status 0

# a file that is not a database at all
head -c 5000 /dev/urandom >"$db"
rm -f "$db-wal" "$db-shm"
run cache stats
expect_status 1
expect_err_has "not a usable sqlite database"
expect_err_has "llmrun cache clear --force"
run cache clear --force
expect_status 0
run -e 'assert(llm.model { "gpt-4o-mini", cache = true }:chat "hi") print(llm.cache.default():stats().stores)'
expect_status 0
expect_out "1"

# ---- a full disk under the call log -------------------------------------------------------
# A file size limit fails writes the way a full disk does (SIGXFSZ ignored).
cat >"$TMP/many.lua" <<'LUA'
llm.log.use(arg[1])
local m = llm.model "gpt-4o-mini"
local items = {}
for i = 1, 3000 do items[i] = i end
llm.map(items, function(i) return assert(m:chat { user = "q" .. i, max_tokens = 2 }) end,
  { concurrency = 32, progress = false })
print("all answered")
LUA
bash -c "trap '' XFSZ; ulimit -f 200; exec '$LLMRUN' '$TMP/many.lua' '$TMP/full/runs.db'" \
  >"$TMP/out" 2>"$TMP/err" </dev/null
status=$?; out=$(cat "$TMP/out"); err=$(cat "$TMP/err")
expect_status 0
expect_out "all answered"
expect_err_has "cannot write the call log: disk I/O error (File too large)"
[[ "$err" != *"cannot rollback"* ]] && ok || fail "the warning hides the cause behind the rollback"
n=$(grep -c "cannot write the call log" "$TMP/err")
[[ $n -eq 1 ]] && ok || fail "$n call log warnings, want 1"

# ---- serve: an unknown latency profile ----------------------------------------------------
run serve --sim --profile nosuch --port 0
expect_status 2
expect_err_has "unknown latency profile 'nosuch'"
expect_err_has "gpt-4o-mini"
expect_err_has "zero"
LLMRUN_SIM_PROFILE=nosuch run serve --sim --port 0
expect_status 2
expect_err_has "LLMRUN_SIM_PROFILE"

# ---- tokens: endless input ---------------------------------------------------------------
start=$(date +%s%N)
run tokens /dev/zero
expect_status 1
expect_err_has "larger than 67108864 bytes"
expect_err_has "--max-bytes"
(( ($(date +%s%N) - start) / 1000000 < 10000 )) && ok || fail "tokens /dev/zero took over 10 s"
run tokens --max-bytes 2K /dev/zero
expect_status 1
expect_err_has "larger than 2048 bytes"
run_in "hello world" tokens --max-bytes 1M
expect_status 0
expect_out "2"
run tokens --max-bytes lots /dev/null
expect_status 2

# ---- hooks must be functions -------------------------------------------------------------
run -e 'llm.calls.on_finish(1)'
expect_status 1
expect_err_has "bad argument #1 to 'llm.calls.on_finish' (function expected, got number)"
run -e 'llm.calls.on_before("x")'
expect_status 1
expect_err_has "bad argument #1 to 'llm.calls.on_before' (function expected, got string)"
run -e 'llm.calls.on_finish(setmetatable({}, { __call = function() end }))
        print(llm.model("gpt-4o-mini"):chat("hi") ~= nil)'
expect_status 0
expect_out "true"

finish
