#!/usr/bin/env bash
# llm.batch on a Claude model across processes, against a stand-alone
# simulator's Message Batches (/v1/messages/batches): a script killed with
# SIGKILL while its batch runs, then rerun, resumes the same batch (the
# simulator's counters show one create); `llmrun batch list|status|results
# |cancel` on the recorded Anthropic batches. test_batch.sh does the same
# for OpenAI's Batch API.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/batch_lib.sh"

export XDG_DATA_HOME="$TMP/data" OPENAI_API_KEY= ANTHROPIC_API_KEY=
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$TMP"' EXIT

"$LLMRUN" serve --sim --port 0 --profile zero --batch-turnaround-s 2 -q >"$TMP/url" 2>"$TMP/serve.err" &
pids+=($!)
for _ in $(seq 100); do url=$(head -n1 "$TMP/url" 2>/dev/null); [[ -n $url ]] && break; sleep 0.05; done
[[ -n $url ]] || { echo "the simulator did not start"; exit 1; }
export SIM_URL=$url

cat >"$TMP/job.lua" <<'LUA'
-- 30 questions through the Message Batches of the simulator at $SIM_URL
local m = llm.model { "claude-haiku-4-5", provider = "sim", base_url = os.getenv("SIM_URL") }
assert(m.format.name == "anthropic", m.format.name)
local qs = {}
for i = 1, tonumber(arg[1] or 30) do qs[i] = ("What is %d + %d?"):format(i, 5) end
local res, errs = llm.batch(m, qs, { poll = { min = 0.05, max = 0.2 } })
print(("done %d errors %d resumed %s id %s"):format(res.n, errs.count,
  tostring(res.batches[1].resumed), res.batches[1].id))
print(res[7].text)
LUA

sim_stats() { # the simulator's Message Batches created
  "$LLMRUN" -e 'local r = assert(require("_llm.http").request { url = os.getenv("SIM_URL"):gsub("/v1$", "") .. "/sim/stats" })
    print(("%d"):format(require("cjson").decode(r.body).batch.message_batches_created))'
}

# the first run is killed while its batch is in progress
kill_midway "$TMP/job.lua" "1"

# the rerun resumes it: no second create
run "$TMP/job.lua"
expect_status 0
expect_out_has "done 30 errors 0 resumed true"
expect_err_has "resuming batch"
id=$(sed -n 's/.* id \(msgbatch_01[A-Za-z0-9]*\).*/\1/p' "$TMP/out")
[[ -n $id ]] && ok || fail "no msgbatch id in the output"
status=0; out=$(sim_stats); err=""
expect_out "1"

# the record and the provider's view
run batch list
expect_status 0
expect_out_has "$id"
expect_out_has "sim/claude-haiku-4-5"
expect_out_has "ended"
run batch status "${id:0:16}"
expect_status 0
expect_out_has "ended"
expect_out_has "30 requests: 30 completed, 0 failed"
run batch results "$id"
expect_status 0
if [[ $(printf '%s\n' "$out" | wc -l) -eq 30 ]]; then ok; else fail "30 result lines expected"; fi
first=$(printf '%s\n' "$out" | head -n1)
last=$(printf '%s\n' "$out" | tail -n1)
if [[ $first == *'"custom_id":"r1"'* && $last == *'"custom_id":"r30"'* ]]; then ok; else fail "results not in request order"; fi
expect_out_has '"cost":'
expect_err_has "30 answers, 0 errors"
run batch cancel "$id"
expect_status 1
expect_err_has "has already ended and cannot be canceled"

# cancelling a running batch from another process
"$LLMRUN" "$TMP/job.lua" 40 >"$TMP/second.out" 2>"$TMP/second.err" &
job=$!
pids+=($job)
for _ in $(seq 200); do [[ "$(sim_stats)" == "2" ]] && break; sleep 0.05; done
id2=$("$LLMRUN" batch list --json | head -n1 | sed 's/.*"batch_id":"\([^"]*\)".*/\1/')
[[ $id2 == msgbatch_01* && $id2 != "$id" ]] && ok || fail "the second batch is not listed first: $id2"
run batch cancel "$id2"
expect_status 0
expect_out_has "$id2  canceling"
wait "$job"
if grep -q "done 40 errors [1-9]" "$TMP/second.out"; then ok; else fail "the canceled batch's requests should fail: $(cat "$TMP/second.out")"; fi

finish
