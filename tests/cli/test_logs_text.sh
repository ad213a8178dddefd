# The call log a user can search: prompt and answer texts logged with each
# call (0600, keys masked, opt-outs), `llmrun logs` filters (-q, --tag,
# -m, --status) and --full, runs with their script, arguments and
# directory, `llmrun report` picking the latest run of the directory, and
# `llmrun report RUN` on an experiment's run agreeing with the experiment's
# own figures where both count the same thing.
source "$(dirname "$0")/lib.sh"

export XDG_DATA_HOME="$TMP/data" LLMRUN_SIM_PROFILE=zero
DB="$XDG_DATA_HOME/llmrun/runs.db"
mkdir -p "$TMP/proj" "$TMP/elsewhere"

cat >"$TMP/proj/calls.lua" <<'LUA'
local m = llm.model { name = "gpt-4o-mini", max_retries = 0 }
assert(m:chat({ user = "What is 17 + 25?" }, { tag = "math", case = "q1" }))
assert(m:chat({ user = "Say hello", mock_response = "Hello \27[31mred\27[0m world" }, { tag = "greet" }))
assert(m:chat({ user = "my key is sk-abcdefghijklmnopqrstuvwxyz0123", mock_response = "noted" }, { tag = "greet" }))
assert(m:chat({ user = "a private question", mock_response = "a private answer" }, { tag = "greet", log_text = false }))
local quiet = llm.model { name = "gpt-4o", log_text = false }
assert(quiet:chat({ user = "another private question", mock_response = "hidden" }, { tag = "greet" }))
local r, err = llm.model { name = "gpt-4o", max_retries = 0, headers = { ["x-sim-fault"] = "503" } }
  :chat({ user = "this one fails" }, { tag = "fails" })
assert(not r and err.status == 503)
print(llm.log.run_id())
LUA

cd "$TMP/proj" || exit 1
run calls.lua --fast "two words"
expect_status 0
RUN_ID=$out
cd - >/dev/null || exit 1

# the file is private; the text is in it, the key is not
perms=$(stat -c %a "$DB")
[[ $perms == 600 ]] && ok || fail "runs.db mode $perms, want 600"
if grep -aq "sk-abcdefghijklmnopqrstuvwxyz0123" "$DB"* ; then fail "the key reached the log"; else ok; fi

run logs -n 0
expect_status 0
expect_out_has "answer"
expect_out_has "Hello \\x1b[31mred\\x1b[0m world"
[[ "$out" != *$'\e['* ]] && ok || fail "an escape sequence reached the terminal"

run logs -q "17 + 25"
expect_status 0
expect_out_has "math"
lines=$(printf '%s\n' "$out" | wc -l)
[[ $lines -eq 2 ]] && ok || fail "-q: $lines lines, want header + 1"
run logs -q "PRIVATE"
expect_status 0
expect_err_has "no calls logged that match"
run logs -q "<redacted>" --full
expect_status 0
expect_out_has "user: my key is <redacted>"
run logs --tag greet -n 0
expect_status 0
lines=$(printf '%s\n' "$out" | wc -l)
[[ $lines -eq 5 ]] && ok || fail "--tag greet: $lines lines, want header + 4"
run logs --status error
expect_status 0
expect_out_has "error (http 503)"
expect_out_has "fails"
run logs --status error --full
expect_out_has "  error:"
expect_out_has "  prompt:"
expect_out_has "    user: this one fails"
run logs -m gpt-4o -n 0
expect_status 0
lines=$(printf '%s\n' "$out" | wc -l)
[[ $lines -eq 3 ]] && ok || fail "-m gpt-4o: $lines lines, want header + 2"
run logs --tag greet --full -n 0
expect_out_has "  prompt:"
expect_out_has "    user: Say hello"
expect_out_has "  answer:"
expect_out_has "(no text logged)"
run logs --status sleepy
expect_status 2
run logs -q "17 + 25" --json
expect_status 0
expect_out_has '"prompt":"user: What is 17 + 25?"'
expect_out_has '"case":"q1"'

# runs: script, arguments, directory
run logs --runs
expect_status 0
expect_out_has "calls.lua --fast \"two words\""
expect_out_has "$TMP/proj"
run logs --runs --json
expect_out_has '"args":"[\"--fast\",\"two words\"]"'
expect_out_has "\"cwd\":\"$TMP/proj\""

# LLMRUN_LOG_TEXT=0: rows, no texts
cd "$TMP/elsewhere" || exit 1
LLMRUN_LOG_TEXT=0 run -e 'assert(llm.model("gpt-4o-mini"):chat("text that stays out")); print(llm.log.run_id())'
expect_status 0
OTHER_RUN=$out
cd - >/dev/null || exit 1
run logs --run "$OTHER_RUN" --full
expect_status 0
expect_out_has "(no text logged)"
run logs -q "stays out"
expect_err_has "no calls logged that match"

# report with no run: the latest of this directory, saying so
cd "$TMP/proj" || exit 1
run report
cd - >/dev/null || exit 1
expect_status 0
expect_err_has "llmrun report: run $RUN_ID (the latest run in $TMP/proj: calls.lua --fast two words"
cd "$TMP" || exit 1
run report
cd - >/dev/null || exit 1
expect_status 0
expect_err_has "no run was started in $TMP; the latest run of all"
expect_err_has "run $OTHER_RUN"

# an experiment's run: `llmrun report RUN` has the experiment's cost and
# tokens exactly, and says why latency and the rest are per call
cat >"$TMP/proj/exp.lua" <<'LUA'
local cases = {}
for i = 1, 24 do cases[i] = { id = "q" .. i, question = ("What is %d + %d?"):format(i, 3 * i), answer = tostring(4 * i) } end
local mini, big = llm.model "gpt-4o-mini", llm.model "gpt-4o"
local cmp = llm.experiment { cases = cases, progress = false, concurrency = 4, check = llm.check.equals(),
  variants = { { name = "baseline", run = function(c) return big:chat(c.question) end },
               { name = "mini", run = function(c) return mini:chat(c.question) end } } }
local f = assert(io.open(arg[1], "w"))
f:write(cmp:json())
f:close()
print(llm.log.run_id())
LUA
cd "$TMP/proj" || exit 1
run exp.lua "$TMP/exp.json"
cd - >/dev/null || exit 1
expect_status 0
EXP_RUN=$out
run report "$EXP_RUN" --json
expect_status 0
printf '%s' "$out" >"$TMP/log.json"
EXP_JSON="$TMP/exp.json" LOG_JSON="$TMP/log.json" run -e '
  local cjson = require "cjson"
  local function read(p) local f = assert(io.open(p)); local d = cjson.decode(f:read("a")); f:close(); return d end
  local exp, log = read(os.getenv("EXP_JSON")), read(os.getenv("LOG_JSON"))
  local function metric(d, key) for _, m in ipairs(d.metrics) do if m.key == key then return m end end end
  for _, v in ipairs { "baseline", "mini" } do
    local a, b = metric(exp, "cost").values[v], metric(log, "cost").values[v]
    assert(math.abs(a - b) <= 1e-12 * math.max(1, a), ("cost %s: %s vs %s"):format(v, a, b))
    a, b = metric(exp, "tokens").values[v], metric(log, "tokens").values[v]
    assert(a == b, ("tokens %s: %s vs %s"):format(v, a, b))
  end
  assert(metric(exp, "quality") and not metric(log, "quality"), "accuracy only in the experiment")
  local noted = false
  for _, n in ipairs(log.notes) do noted = noted or n:find("rows are calls, not cases", 1, true) ~= nil end
  assert(noted, "the report says why it differs")
  print("agree")'
expect_status 0
expect_out "agree"

finish
