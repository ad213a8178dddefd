# Helpers for CLI tests: run llmrun, capture status/stdout/stderr, assert.
# Each test_*.sh sources this, calls the helpers, and ends with `finish`.
set -u
LLMRUN=${LLMRUN:?LLMRUN must name the llmrun binary}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

# run ARGS... : sets $status, $out, $err
run() {
  "$LLMRUN" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
  status=$?
  out=$(cat "$TMP/out")
  err=$(cat "$TMP/err")
}

# run_in INPUT ARGS... : like run, with INPUT on stdin
run_in() {
  local input=$1
  shift
  printf '%s' "$input" | "$LLMRUN" "$@" >"$TMP/out" 2>"$TMP/err"
  status=$?
  out=$(cat "$TMP/out")
  err=$(cat "$TMP/err")
}

fail() {
  failed=$((failed + 1))
  echo "FAIL ${BASH_LINENO[1]}: $*" >&2
  echo "  status=$status" >&2
  echo "  stdout: $(head -c 600 "$TMP/out")" >&2
  echo "  stderr: $(head -c 600 "$TMP/err")" >&2
}
ok() { passed=$((passed + 1)); }

expect_status() { if [[ $status -eq $1 ]]; then ok; else fail "status $status, want $1"; fi; }
expect_out() { if [[ "$out" == "$1" ]]; then ok; else fail "stdout '$out', want '$1'"; fi; }
expect_out_has() { if [[ "$out" == *"$1"* ]]; then ok; else fail "stdout lacks '$1'"; fi; }
expect_err_has() { if [[ "$err" == *"$1"* ]]; then ok; else fail "stderr lacks '$1'"; fi; }
expect_err_empty() { if [[ -z "$err" ]]; then ok; else fail "stderr not empty"; fi; }

finish() {
  echo "$(basename "$0"): $passed passed, $failed failed"
  # a failed test keeps what it made (outputs, reports, logs) for a look
  # afterwards, when LLMRUN_KEEP_FAILED names a directory
  if [[ $failed -gt 0 && -n ${LLMRUN_KEEP_FAILED:-} ]]; then
    mkdir -p "$LLMRUN_KEEP_FAILED"
    cp -r "$TMP" "$LLMRUN_KEEP_FAILED/$(basename "$0" .sh)-$$" && echo "kept: $LLMRUN_KEEP_FAILED/$(basename "$0" .sh)-$$"
  fi
  [[ $failed -eq 0 && $passed -gt 0 ]]
}
