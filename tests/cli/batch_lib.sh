# Shared by test_batch.sh and test_batch_anthropic.sh (source lib.sh first;
# the test defines sim_stats, printing the simulator's batch counters).

# kill_midway SCRIPT WANT: runs SCRIPT in the background, kills it with
# SIGKILL once sim_stats prints WANT (its batch submitted) and a little
# after, then checks that the counters still say WANT and that the run had
# not finished.
kill_midway() {
  "$LLMRUN" "$1" >"$TMP/first.out" 2>"$TMP/first.err" &
  local job=$!
  pids+=($job)
  for _ in $(seq 200); do [[ "$(sim_stats)" == "$2" ]] && break; sleep 0.05; done
  sleep 0.3
  kill -9 "$job" 2>/dev/null
  wait "$job" 2>/dev/null
  status=0; out=$(sim_stats); err=""
  expect_out "$2"
  if grep -q "^done" "$TMP/first.out"; then fail "the first run finished before it was killed"; else ok; fi
}
