# llmrun chat: a conversation over a pipe (each line a message), its
# commands, /cost, and Ctrl-C during an answer: that answer is cancelled
# and forgotten, the conversation goes on.
source "$(dirname "$0")/lib.sh"
export XDG_DATA_HOME="$TMP/data" XDG_CACHE_HOME="$TMP/cache" XDG_STATE_HOME="$TMP/state"

run chat --help
expect_status 0; expect_out_has "-m, --model MODEL"; expect_out_has "/cost"; expect_out_has "Ctrl-C"

# a conversation: answers on stdout, /cost counts every turn, /exit leaves
run_in $'What is 12 + 30?\nAnd 2 + 2?\n/cost\n/model gpt-4o\nWhat is 5 * 5?\n/cost\n/nosuch\n/exit\nWhat is 1 + 1?\n' \
  chat -m gpt-4o-mini
expect_status 0
expect_out_has "42"
expect_out_has "this conversation: 2 answers;"
expect_out_has "this conversation: 3 answers;"
expect_out_has "(gpt-4o, gpt-4o-mini)"
expect_err_has "model: gpt-4o (sim)"
expect_err_has "unknown command /nosuch"
[[ $(grep -c "this conversation" "$TMP/out") -eq 2 ]] && ok || fail "the line after /exit was read"

# the tokens one question costs on its own, for the comparison below
run_in $'What is 12 + 30?\n/cost\n' chat
alone=$(grep -o '[0-9,]* tokens in' "$TMP/out")

# Ctrl-C during a slow answer: cancelled, forgotten, the chat goes on
mkfifo "$TMP/in"
LLMRUN_SIM_TOKENS_PER_S=20 LLMRUN_SIM_TTFT_MS=10 "$LLMRUN" chat <"$TMP/in" >"$TMP/out" 2>"$TMP/err" &
pid=$!
exec 3>"$TMP/in"
printf 'Tell me a long story about a lighthouse.\n' >&3
for _ in $(seq 100); do [[ -s "$TMP/out" ]] && break; sleep 0.05; done
kill -INT "$pid"
for _ in $(seq 100); do grep -q "answer cancelled" "$TMP/err" && break; sleep 0.05; done
printf 'What is 12 + 30?\n/cost\n/exit\n' >&3
exec 3>&-
wait "$pid"
status=$?
out=$(cat "$TMP/out"); err=$(cat "$TMP/err")
expect_status 0
expect_err_has "(answer cancelled)"
expect_out_has "42"
expect_out_has "1 answer, 1 cancelled"
# the cancelled turn is not part of the conversation: the question costs
# what it costs alone
if [[ -n "$alone" && "$out" == *"$alone"* ]]; then ok; else fail "tokens in after a cancel: want '$alone'"; fi
finish
