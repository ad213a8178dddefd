#!/usr/bin/env bash
# Record and replay, end to end (README "Record and replay"): the
# before/after example recorded against a real-shaped upstream (the
# simulator as a separate OpenAI-compatible server, reached with a base
# URL and a key), then replayed offline (no server, no key), timed and
# instantly, giving the same JSON report as the live run but for times;
# a strategy evaluated on the recording; the cassette commands; and the
# errors: a damaged cassette, one from a newer llmrun, a request with no
# recording, one cassette given to both LLMRUN_RECORD and LLMRUN_REPLAY.
set -u
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$TMP"' EXIT
cd "$TMP"

# the upstream: fast, but with latencies that vary (jitter) as real ones do
"$LLMRUN" serve --sim --ttft-ms 15 --tokens-per-s 800 --jitter 0.3 --seed 7 -q >serve.out 2>serve.err &
pids+=($!)
for _ in $(seq 100); do url=$(head -n1 serve.out 2>/dev/null); [[ -n $url ]] && break; sleep 0.05; done
[[ -n ${url:-} ]] || { echo "the simulator did not start: $(cat serve.err)"; exit 1; }

# ---- record -----------------------------------------------------------------------------
OPENAI_BASE_URL=$url OPENAI_API_KEY=sk-test-0123456789abcdef LLMRUN_RECORD=run.cassette \
  run "$root/examples/before_after.lua" live.html live.json
expect_status 0
[[ -s live.json && -s run.cassette ]] && ok || fail "no report or no cassette"
[[ ! -e run.cassette-wal ]] && ok || fail "the WAL was not folded into the cassette at exit"
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null

run cassette info run.cassette
expect_status 0
expect_out_has "providers  openai at $url"
expect_out_has "intact"
grep -q "sk-test-0123456789abcdef" run.cassette && fail "the API key is in the cassette" || ok

# ---- replay, offline: no server, no key ----------------------------------------------------
calls=$("$LLMRUN" -e "local db = require('_llm.sqlite').open('run.cassette')
  print(db:query('SELECT count(DISTINCT call) AS n FROM exchanges')[1].n)")
"$LLMRUN" "$root/tests/tools/report_without_times.lua" live.json >live.norm
for mode in timed instant; do
  LLMRUN_REPLAY=run.cassette LLMRUN_REPLAY_MODE=$mode LLMRUN_REPLAY_SPEED=2 \
    run "$root/examples/before_after.lua" replay.html replay.json
  expect_status 0
  expect_out_has "REPLAYED: answers from run.cassette, recorded"
  expect_out_has "from openai at $url"
  expect_err_has "llmrun: REPLAYED $calls calls from run.cassette"
  [[ $err != *"no recording"* && $err != *"not kept"* ]] && ok || fail "$mode replay: not every call replayed in order"
  "$LLMRUN" "$root/tests/tools/report_without_times.lua" replay.json >replay.norm
  if cmp -s live.norm replay.norm; then ok; else fail "$mode replay: the JSON report differs: $(diff live.norm replay.norm | head -c 400)"; fi
  grep -q '"replayed"' replay.json && ok || fail "the JSON report does not say it was replayed"
  grep -q 'id="replayed"' replay.html && ok || fail "the HTML report does not say it was replayed"
done

# ---- a strategy on the recording -------------------------------------------------------------
run replay run.cassette --script "$root/examples/strategy_cache_mini.lua" --sim
expect_status 0
expect_out_has "strategy: gpt-4o -> gpt-4o-mini, exact cache; "
expect_out_has "changed requests answered by the simulator (--sim)"
expect_out_has "cost (prices of"
run replay run.cassette --script "$root/examples/strategy_cache_mini.lua" --json
expect_status 0
expect_out_has '"changed_by":"estimated"'

# ---- the cassette commands ----------------------------------------------------------------------
run cassette list run.cassette -n 3
expect_status 0
expect_out_has "gpt-4o"
expect_out_has "baseline"
[[ $(wc -l <<<"$out") -eq 4 ]] && ok || fail "list -n 3: a header and 3 calls"
cp run.cassette pruned.cassette
run cassette prune pruned.cassette --tag baseline --dry-run
expect_status 0
expect_out_has "would remove 80 of the calls"
run cassette prune pruned.cassette --tag baseline
expect_status 0
expect_out_has "removed 80 calls from pruned.cassette"
run cassette diff run.cassette pruned.cassette -n 2
expect_status 1
expect_out_has "only in A:"
expect_out_has "0 only in B"
expect_out_has "nearest in B: call"
run cassette diff run.cassette run.cassette
expect_status 0
expect_out_has "0 in both with different answers, 0 only in A, 0 only in B"
# the pruned cassette still replays the optimized variant's calls; the
# baseline's now have no recording, and say so
cat >optimized_only.lua <<'LUA'
local r, err = llm.model("gpt-4o"):chat { system = "Answer from the context with the value only.",
  user = "Question: anything", max_tokens = 20, temperature = 0 }
print(err and err.kind)
LUA
LLMRUN_REPLAY=pruned.cassette run optimized_only.lua
expect_status 0
expect_out_has "replay"

# ---- errors ----------------------------------------------------------------------------------
printf 'this is not a database, just text that is long enough to look like a header.....\n' >bad.cassette
LLMRUN_REPLAY=bad.cassette run -e 'print(1)'
expect_status 1
expect_err_has "bad.cassette is not a readable cassette"
run cassette info bad.cassette
expect_status 1
expect_err_has "not a readable cassette"

cp run.cassette newer.cassette
sqlite_set() { "$LLMRUN" -e "local db = require('_llm.sqlite').open('$1', 'rw'); assert(db:exec(\"UPDATE meta SET value = '$2' WHERE key = 'version'\"))"; }
sqlite_set newer.cassette 99
LLMRUN_REPLAY=newer.cassette run -e 'print(1)'
expect_status 1
expect_err_has "newer.cassette is a version 99 cassette, written by a newer llmrun"

LLMRUN_REPLAY=run.cassette LLMRUN_RECORD=run.cassette run -e 'print(1)'
expect_status 1
expect_err_has "LLMRUN_RECORD and LLMRUN_REPLAY name the same cassette"

cat >changed.lua <<'LUA'
local m = llm.model "gpt-4o"
local r, err = m:chat { system = "Answer from the context with the value only.",
  user = "What is the budget of Project Beacon, really?", max_tokens = 20, temperature = 0 }
print(r, err and err.kind)
print(err)
LUA
LLMRUN_REPLAY=run.cassette run changed.lua
expect_status 0
expect_out_has "nil	replay"
expect_out_has "no recording of this request in run.cassette"
expect_out_has "nearest recorded: call"
expect_out_has "body.messages[2].content: recorded"
expect_err_has "1 request had no recording (they failed)"

LLMRUN_REPLAY=missing.cassette run -e 'print(1)'
expect_status 1
expect_err_has "no cassette at missing.cassette"

finish
