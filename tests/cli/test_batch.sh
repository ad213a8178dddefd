#!/usr/bin/env bash
# llm.batch across processes, against a stand-alone simulator: a script
# killed with SIGKILL while its batch runs, then rerun, resumes the same
# batch (the simulator's counters show one submission, one upload); and
# `llmrun batch list|status|results|cancel` on the recorded batches.
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
-- 30 questions through the Batch API of the simulator at $SIM_URL
local m = llm.model { "gpt-4o-mini", provider = "sim", base_url = os.getenv("SIM_URL"),
  headers = { ["x-sim-batch-turnaround-s"] = os.getenv("TURNAROUND") } }
local qs = {}
for i = 1, tonumber(arg[1] or 30) do qs[i] = ("What is %d + %d?"):format(i, 5) end
local res, errs = llm.batch(m, qs, { poll = { min = 0.05, max = 0.2 } })
print(("done %d errors %d resumed %s id %s"):format(res.n, errs.count,
  tostring(res.batches[1].resumed), res.batches[1].id))
print(res[7].text)
LUA

sim_stats() { # prints the simulator's batch counters as "created uploaded"
  "$LLMRUN" -e 'local r = assert(require("_llm.http").request { url = os.getenv("SIM_URL"):gsub("/v1$", "") .. "/sim/stats" })
    local b = require("cjson").decode(r.body).batch
    print(("%d %d"):format(b.batches_created, b.files_uploaded))'
}

# the first run is killed while its batch is in progress
kill_midway "$TMP/job.lua" "1 1"

# the rerun resumes it: no second submission, no second upload
run "$TMP/job.lua"
expect_status 0
expect_out_has "done 30 errors 0 resumed true"
expect_out_has "12"          # 7 + 5
expect_err_has "resuming batch"
id=$(sed -n 's/.* id \(batch_[A-Za-z0-9]*\).*/\1/p' "$TMP/out")
status=0; out=$(sim_stats); err=""
expect_out "1 1"

# the record and the provider's view
run batch list
expect_status 0
expect_out_has "$id"
expect_out_has "sim/gpt-4o-mini"
expect_out_has "completed"
run batch list --json
expect_out_has "\"batch_id\":\"$id\""
run batch status "${id:0:12}"
expect_status 0
expect_out_has "completed"
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
expect_err_has "Cannot cancel a batch with status 'completed'"

# cancelling a running batch from another process
# (a long turnaround: on a loaded machine the wait below can outlast 2 s)
TURNAROUND=60 "$LLMRUN" "$TMP/job.lua" 40 >"$TMP/second.out" 2>"$TMP/second.err" &
job=$!
pids+=($job)
# the simulator counts the batch before the client records its id: wait
# for the record too, or the list's first line is still the first batch
for _ in $(seq 200); do
  [[ "$(sim_stats)" == "2 2" && $("$LLMRUN" batch list --json | wc -l) -ge 2 ]] && break
  sleep 0.05
done
id2=$("$LLMRUN" batch list --json | head -n1 | sed 's/.*"batch_id":"\([^"]*\)".*/\1/')
if [[ $id2 != "$id" ]]; then ok; else fail "the second batch was not recorded"; fi
run batch cancel "$id2"
expect_status 0
expect_out_has "$id2  cancel"
wait "$job"
if grep -q "done 40 errors [1-9]" "$TMP/second.out"; then ok; else fail "the cancelled batch's requests should fail: $(cat "$TMP/second.out")"; fi

# a dry run's batches are the in-process simulator's: not recorded
before=$("$LLMRUN" batch list --json | wc -l)
printf 'local r, e = llm.batch("gpt-4o", { "What is 2 + 2?" })\nprint(r[1].text, e.count)\n' >"$TMP/dry.lua"
run --dry-run "$TMP/dry.lua"
expect_status 0
expect_out_has "4"
expect_err_has "estimated tokens and cost"
after=$("$LLMRUN" batch list --json | wc -l)
if [[ $before -eq $after ]]; then ok; else fail "a dry run recorded a batch"; fi

# usage errors
run batch
expect_status 2
run batch frobnicate x
expect_status 2
expect_err_has "unknown subcommand"
run batch status
expect_status 2
run batch status nosuchbatch
expect_status 1
expect_err_has "no batch nosuchbatch in the batch record"

finish
