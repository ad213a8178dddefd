#!/usr/bin/env bash
# llmrun serve --sim: prints its base URL, serves, refuses non-loopback
# hosts, applies options and environment, and stops on Ctrl-C (SIGINT)
# with exit 130 even while a stalled stream holds a connection.
# HTTP goes through bash's /dev/tcp, so no curl binary is needed.
set -u
LLMRUN=${LLMRUN:-llmrun}
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
fails=0
check() { # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}

# http URL METHOD PATH [BODY [HEADER...]] -> prints the raw response
http() {
  local hostport=${1#http://}; hostport=${hostport%%/*}
  local host=${hostport%:*} port=${hostport##*:} method=$2 path=$3 body=${4:-}
  shift 4 2>/dev/null || shift $#
  exec 3<>"/dev/tcp/$host/$port" || return 1
  {
    printf '%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n' "$method" "$path" "$host"
    for h in "$@"; do printf '%s\r\n' "$h"; done
    if [[ -n $body ]]; then
      printf 'Content-Type: application/json\r\nContent-Length: %d\r\n' "${#body}"
    fi
    printf '\r\n%s' "$body"
  } >&3
  timeout 10 cat <&3
  exec 3>&-
}

# start_server OUTFILE ERRFILE ARGS... -> sets $url and $pid
start_server() {
  local out=$1 err=$2; shift 2
  "$LLMRUN" serve "$@" >"$out" 2>"$err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    url=$(head -n1 "$out" 2>/dev/null)
    [[ -n $url ]] && return 0
    sleep 0.05
  done
  return 1
}

chat='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'

# --help and usage errors
"$LLMRUN" serve --help >"$tmp/help" 2>&1; st=$?
check "help exits 0" test "$st" -eq 0
check "help mentions --allow-remote" grep -q -- "--allow-remote" "$tmp/help"
"$LLMRUN" serve >/dev/null 2>"$tmp/err"; st=$?
check "--sim is required (exit 2)" test "$st" -eq 2
"$LLMRUN" serve --sim --bogus >/dev/null 2>&1; st=$?
check "unknown option (exit 2)" test "$st" -eq 2
"$LLMRUN" serve --sim --host 0.0.0.0 >/dev/null 2>"$tmp/err"; st=$?
check "non-loopback host refused (exit 2)" test "$st" -eq 2
check "refusal says why" grep -q "not a loopback address" "$tmp/err"
"$LLMRUN" serve --sim --fault-rate 429=2 >/dev/null 2>&1; st=$?
check "bad fault rate (exit 2)" test "$st" -eq 2

# a server with options: prints the URL, serves, counts
start_server "$tmp/out" "$tmp/err" --sim --port 0 --profile zero --fault-rate 503=1 --retry-after 4
check "prints its base URL" bash -c "[[ '$url' =~ ^http://127\.0\.0\.1:[0-9]+/v1$ ]]"
resp=$(http "$url" POST /v1/chat/completions "$chat")
check "fault rate applied (503)" grep -q "^HTTP/1.1 503" <<<"$resp"
check "retry-after from --retry-after" grep -qi "^retry-after: 4" <<<"$resp"
resp=$(http "$url" POST /v1/chat/completions "$chat" "x-sim-fault: none")
check "a request can opt out of faults" grep -q "^HTTP/1.1 200" <<<"$resp"
resp=$(http "$url" GET /sim/stats "")
check "stats count the requests" grep -q '"requests":3' <<<"$resp"

# a stalled stream holds a connection open while we interrupt
( http "$url" POST /v1/chat/completions \
    '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hello there"}]}' \
    "x-sim-fault: stall" "x-sim-stall-ms: 60000" >"$tmp/stalled" ) &
pids+=($!)
sleep 0.3
start=$(date +%s%N)
kill -INT "$pid"
wait "$pid"; st=$?
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "Ctrl-C exits 130" test "$st" -eq 130
check "Ctrl-C stops at once with a stream in flight (${elapsed_ms} ms)" test "$elapsed_ms" -lt 3000
check "summary on stderr" grep -q "served [0-9]* requests" "$tmp/err"
check "the stalled client saw the start of the stream" grep -q "^data: " "$tmp/stalled"
port=${url##*:}; port=${port%/v1}
check "the port is closed after exit" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null"

# environment variables, and a taken port
LLMRUN_SIM_FAULTS="500=1" start_server "$tmp/out2" "$tmp/err2" --sim -q
resp=$(http "$url" POST /v1/chat/completions "$chat")
check "LLMRUN_SIM_FAULTS applies" grep -q "^HTTP/1.1 500" <<<"$resp"
port=${url##*:}; port=${port%/v1}
"$LLMRUN" serve --sim --port "$port" >/dev/null 2>"$tmp/err3"; st=$?
check "a taken port fails (exit 1)" test "$st" -eq 1
check "and says so" grep -q "cannot listen" "$tmp/err3"
kill -INT "$pid"; wait "$pid"; st=$?
check "quiet server exits 130" test "$st" -eq 130
check "-q prints no summary" bash -c "! grep -q served '$tmp/err2'"

# --task FILE: a labelled task, answered by its rules; x-sim-skill says so;
# mock_response gives a scripted answer
cat >"$tmp/task.jsonl" <<'TASK'
{"task": {"name": "moods", "options": ["happy", "sad"]}}
{"input": "The sun came out and we danced in the square all evening long.", "answer": "happy"}
{"input": "The rain did not stop and the last train was cancelled again.", "answer": "sad"}
TASK
start_server "$tmp/out4" "$tmp/err4" --sim --profile zero --task "$tmp/task.jsonl"
check "--task says what it registered" grep -q "task moods: 2 cases (classification)" "$tmp/err4"
resp=$(http "$url" POST /v1/chat/completions \
  '{"model":"o3","messages":[{"role":"user","content":"Happy or sad? The sun came out and we danced in the square all evening long."}]}')
check "a registered case is answered by the task skill" grep -qi "^x-sim-skill: task" <<<"$resp"
check "with one of the options" grep -Eq '"content":"(happy|sad)"' <<<"$resp"
resp=$(http "$url" POST /v1/chat/completions "$chat")
check "anything else is filler, and says so" grep -qi "^x-sim-skill: filler" <<<"$resp"
resp=$(http "$url" POST /v1/chat/completions \
  '{"model":"gpt-4o","mock_response":"Scripted.","messages":[{"role":"user","content":"Hi"}]}')
check "mock_response is the answer" grep -q '"content":"Scripted."' <<<"$resp"
check "and its skill is mock" grep -qi "^x-sim-skill: mock" <<<"$resp"
kill -INT "$pid"; wait "$pid"
echo '{"input": "x"}' >"$tmp/bad.jsonl"
"$LLMRUN" serve --sim --task "$tmp/bad.jsonl" >/dev/null 2>"$tmp/err5"; st=$?
check "a bad task file fails (exit 1)" test "$st" -eq 1
check "naming the problem" grep -q "case 1 has no answer" "$tmp/err5"

if [[ $fails -gt 0 ]]; then echo "$fails failed"; exit 1; fi
echo "all passed"
