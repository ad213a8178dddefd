# What a new user meets first: every subcommand's --help lists its
# options, a mistyped command says "unknown command", the usage text
# matches the README, the REPL shows a response as its fields, and a dry
# run neither writes over a real report nor prints targets as results.
source "$(dirname "$0")/lib.sh"
export XDG_DATA_HOME="$TMP/data" XDG_CACHE_HOME="$TMP/cache" XDG_STATE_HOME="$TMP/state"
root="${LLMRUN_SOURCE_DIR:-.}"

# every command listed by --help has a --help of its own with its options
run --help
expect_status 0; expect_out_has "-i FILE"
commands=$(printf '%s\n' "$out" | sed -n '/^commands/,/^$/p' | awk 'NF > 1 && $1 != "commands" {print $1}')
[[ $(printf '%s\n' "$commands" | wc -l) -ge 7 ]] && ok || fail "commands listed: $commands"
for c in $commands; do
  run "$c" --help
  expect_status 0
  expect_out_has "usage: llmrun $c"
  # at least one option line ("  -x, --long ..." or "  --long ...")
  if grep -Eq '^ +-' "$TMP/out"; then ok; else fail "llmrun $c --help lists no options"; fi
done
# the README's command line section says -i FILE, as the usage text does
if grep -q -- "-i FILE" "$root/README.md"; then ok; else fail "README lacks -i FILE"; fi

# a mistyped command is an unknown command, not a file that cannot open
run nosuchcmd
expect_status 2; expect_err_has "unknown command 'nosuchcmd'"; expect_err_has "llmrun --help"
run nosuchfile.lua
expect_status 2; expect_err_has "cannot open nosuchfile.lua"
run chat --nosuch
expect_status 2; expect_err_has "unknown option --nosuch"

# the REPL: =r shows a response's fields, token counts as integers, vectors shortened
run_in $'m = llm.model { name = "gpt-4o-mini", headers = { ["x-sim-profile"] = "zero" } }\nr = m:chat "What is 12 + 30?"\n=r\n=r.usage.prompt_tokens\ne = llm.model("text-embedding-3-small"):embed { "a", "b" }\n=e.vectors\nprint(r)\n' -i
expect_status 0
expect_out_has "llm.response {"
expect_out_has 'text = "42"'
expect_out_has "prompt_tokens = 15,"
expect_out_has $'\n15\n'
expect_out_has "(1536 numbers) }"
expect_out_has $'\n42'
# (a count like "tokens = 15.0"; a latency may well read 215.03)
if [[ "$out" != *"_body"* ]] && ! grep -Eq '_tokens = [0-9]+\.0' "$TMP/out"; then ok
else fail "private fields or float counts shown"; fi

# --dry-run: reports under a dry-run name, no targets claimed
(cd "$TMP" && "$LLMRUN" --dry-run "$root/examples/before_after.lua" "$TMP/ba.html" >"$TMP/out" 2>"$TMP/err" </dev/null)
status=$?; out=$(cat "$TMP/out"); err=$(cat "$TMP/err")
expect_status 0
[[ -s "$TMP/ba.dry-run.html" && ! -e "$TMP/ba.html" ]] && ok || fail "dry run wrote $(ls "$TMP")"
expect_out_has "DRY RUN"
expect_out_has "Targets: not checked in a dry run"
if [[ "$out" != *"NOT met"* && "$out" != *"SIMULATED:"* ]]; then ok; else fail "dry run claims targets"; fi
expect_err_has "reports go under dry-run names"
expect_err_has "llmrun --dry-run: estimated tokens and cost"
grep -q "DRY RUN" "$TMP/ba.dry-run.html" && ok || fail "the HTML report does not say DRY RUN"
finish
