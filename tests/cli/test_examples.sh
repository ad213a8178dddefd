# Every example runs to the end on the simulator, fast: the zero latency
# profile (LLMRUN_SIM_PROFILE=zero) takes the waiting out, the workloads stay
# full size, so a broken example fails CI in seconds rather than minutes.
# Checks are on what each example must print, not on its numbers (those
# depend on latency, which is zero here).
source "$(dirname "$0")/lib.sh"

export XDG_DATA_HOME="$TMP/data" XDG_CACHE_HOME="$TMP/cache" LLMRUN_SIM_PROFILE=zero
EX="${LLMRUN_SOURCE_DIR:-.}/examples"

# run_example NAME ARGS... : runs examples/NAME.lua from $TMP (files it
# writes by default land there)
run_example() {
  local name=$1
  shift
  (cd "$TMP" && "$LLMRUN" "$EX/$name.lua" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null)
  status=$?
  out=$(cat "$TMP/out")
  err=$(cat "$TMP/err")
}

run_example day1_latency "$TMP/day1.html"
expect_status 0
expect_out_has "8 at a time"
expect_out_has "Day 1: whole answers vs streaming"
expect_out_has "SIMULATED"
expect_out_has "TTFT p50"
if [[ -s "$TMP/day1.html" ]]; then ok; else fail "day1: no HTML report"; fi

run_example day2_tokens "$TMP/day2.html"
expect_status 0
expect_out_has "document + question"
expect_out_has "selected (3x)"
expect_out_has "When to use each, from these numbers:"
if [[ -s "$TMP/day2.html" ]]; then ok; else fail "day2: no HTML report"; fi

run_example day3_caching "$TMP/day3.html"
expect_status 0
expect_out_has "exact + semantic"
expect_out_has "What each cache counted"
expect_out_has "every vector from the cache"
if [[ -s "$TMP/day3.html" ]]; then ok; else fail "day3: no HTML report"; fi
if [[ -z "$(ls "$TMP/cache" 2>/dev/null)" ]]; then ok; else fail "day3 left files in the cache directory"; fi

run_example day4_metrics "$TMP/day4.html" 12
expect_status 0
expect_out_has "Day 4: baseline vs optimized (arithmetic, 12 questions)"
expect_out_has "cases                 12 (0 failed)"
expect_out_has "wall time"
expect_out_has "In one line:"
if [[ -s "$TMP/day4.html" && -s "$TMP/day4.md" ]]; then ok; else fail "day4: no HTML or Markdown report"; fi

run_example before_after "$TMP/before_after.html"
expect_status 0
expect_out_has "Before/after: question answering over documents (80 requests)"
expect_out_has "SIMULATED"
expect_out_has "wall time"
expect_out_has "Targets: "
expect_out_has "Where it came from: documents cut"
if [[ -s "$TMP/before_after.html" ]]; then ok; else fail "before_after: no HTML report"; fi
if [[ -z "$(ls "$TMP/cache" 2>/dev/null)" ]]; then ok; else fail "before_after left files in the cache directory"; fi

run_example batch_vs_sync "$TMP/batch.html"
expect_status 0
expect_out_has "Batch vs sync: the same questions, two APIs"
expect_out_has "batch: Batch API, at batch prices: 48 requests in 1 batch"
expect_out_has "In one line: the batch arm cost 0.50x the sync arm"
if [[ -s "$TMP/batch.html" ]]; then ok; else fail "batch_vs_sync: no HTML report"; fi

# the gateway strategy, applied to a plain HTTP client through two gateways
run_example proxy_strategy 20
expect_status 0
expect_out_has "strategy vs baseline"
expect_out_has "contexts compressed"
expect_out_has "accuracy (client's check)"

run_example own_task "$TMP/own.html"
expect_status 0
expect_out_has "Registered 100 classification cases with the simulator"
expect_out_has "Naming the labels:"
expect_out_has "<- the cheapest within 95% of the best"
expect_out_has "In one line:"
[[ "$out$err" != *"answers were filler"* ]] && ok || fail "own_task: filler answers"
if [[ -s "$TMP/own.html" ]]; then ok; else fail "own_task: no HTML report"; fi

# an example's report can be read back from the call log
run report
expect_status 0
expect_out_has "baseline"

# scripted answers test a user's own agent on both wires, offline
run_example responder
expect_status 0
expect_out_has "a 429 is retried by the client, once"
expect_out_has "All checks passed."
[[ "$out" != *"FAIL"* ]] && ok || fail "responder: a check failed"

# the distributed experiment runs its own redis-server and 3 workers; without
# redis-server (scripts/setup installs it) it says so and stops
if command -v redis-server >/dev/null 2>&1; then
  CASES=120 run_example distributed_experiment
  expect_status 0
  # three start; how many take part before 120 zero-latency cases are gone
  # depends on how fast they start (a loaded machine may leave one out)
  expect_out_has "spread over "
  expect_out_has "Workers: "
  expect_out_has "cost (total)"
  # the workers' calls are in the coordinator's run of the call log
  run report
  expect_status 0
  expect_out_has "2 variants (strong, small)"
else
  run_example distributed_experiment
  expect_status 0
  expect_out_has "needs redis-server"
fi

finish
