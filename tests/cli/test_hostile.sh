# Hostile servers seen from the command line (issue 13): `llmrun prompt`
# against mockhttp's hostile modes (tests/tools/mockhttp.c). What reaches
# the terminal must carry no control characters from the server and never
# the API key, with debug logging on too; a base URL that is not http(s)
# is refused before anything is sent or read.
source "$(dirname "$0")/lib.sh"
MOCKHTTP=${MOCKHTTP:?MOCKHTTP must name the mockhttp binary}
export XDG_CACHE_HOME="$TMP/cache" XDG_DATA_HOME="$TMP/data" XDG_STATE_HOME="$TMP/state"
KEY="sk-proj-HOSTILE-$RANDOM$RANDOM-never-shown"

# start_mode NAME: starts a hostile server; sets $port and $pid
start_mode() {
  "$MOCKHTTP" --mode "$1" "$TMP/$1.log" 30 >"$TMP/$1.port" &
  for _ in $(seq 100); do [[ -s "$TMP/$1.port" ]] && break; sleep 0.05; done
  read -r port pid <"$TMP/$1.port"
}

# prompt_against NAME: `llmrun prompt` against mode NAME, debug log on
prompt_against() {
  start_mode "$1"
  OPENAI_BASE_URL="http://127.0.0.1:$port/v1" OPENAI_API_KEY="$KEY" LLMRUN_DEBUG=1 \
    LLMRUN_RETRY_SCALE=0.01 "$LLMRUN" prompt -m openai/gpt-4o-mini --no-stream hi \
    >"$TMP/out" 2>"$TMP/err" </dev/null
  status=$?; out=$(cat "$TMP/out"); err=$(cat "$TMP/err")
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
}

# no_control FILE: no byte below 0x20 but tab and line feed, no DEL
no_control() {
  if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$1"; then
    fail "control characters in $1: $(LC_ALL=C grep -o $'[\x01-\x08\x0b-\x1f\x7f].\{0,12\}' "$1" | od -c | head -3)"
  else ok; fi
}

# ---- an error full of terminal escapes ---------------------------------------
prompt_against ansi-error
expect_status 1
expect_err_has 'bad \x1b[31mred\x1b[0m'
expect_err_has 'req_\x1b]0;pwned\x07\x1b[2J'
no_control "$TMP/err"
no_control "$TMP/out"
if grep -q '^llmrun: forged line' "$TMP/err"; then fail "a server forged a line"; else ok; fi

# ---- a 401 that quotes the key back ---------------------------------------------
prompt_against echo-auth
expect_status 1
expect_err_has "Incorrect API key provided: Bearer <redacted>"
if grep -rqF -- "$KEY" "$TMP/out" "$TMP/err" "$TMP/data" "$TMP/cache" 2>/dev/null; then
  fail "the key was printed or stored"
else ok; fi

# ---- base URLs that are not http(s) ----------------------------------------------
for url in 'file:///etc/hostname#' 'dict://127.0.0.1:1/' 'gopher://127.0.0.1:1/'; do
  OPENAI_BASE_URL="$url" OPENAI_API_KEY="$KEY" "$LLMRUN" prompt -m openai/gpt-4o-mini hi \
    >"$TMP/out" 2>"$TMP/err" </dev/null
  status=$?; out=$(cat "$TMP/out"); err=$(cat "$TMP/err")
  if [[ $status -ne 0 ]]; then ok; else fail "$url accepted"; fi
  expect_err_has "is not an http:// or https:// URL"
  expect_err_has "OPENAI_BASE_URL"
  if [[ -z "$out" ]]; then ok; else fail "$url: something was printed: $out"; fi
done

finish
