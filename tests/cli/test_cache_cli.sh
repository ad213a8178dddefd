#!/usr/bin/env bash
# llmrun cache stats|clear|path|check (lualib/llm/cli/cache.lua).
source "$(dirname "$0")/lib.sh"
export XDG_CACHE_HOME="$TMP/xdg"

run cache path
expect_status 0
expect_out "$TMP/xdg/llmrun/cache.db"

run cache stats
expect_status 0
expect_out "no cache yet at $TMP/xdg/llmrun/cache.db"
[[ ! -e "$TMP/xdg/llmrun/cache.db" ]] && ok || fail "stats created the file"

run cache stats --json
expect_status 0
expect_out "{\"exists\":false,\"path\":\"$TMP/xdg/llmrun/cache.db\",\"namespaces\":[]}"

# fill two namespaces through the store, with statistics
run -e '
  local c = assert(llm.cache.open())
  local C = require "_llm.cache"
  local db = c.shared.db
  for i = 1, 3 do assert(db:put("default", C.sha256("a" .. i), "v")) end
  assert(db:put("other", C.sha256("b"), "v", 0.01))
  db:count("default", "hits_exact", 6)
  db:count("default", "misses", 2)
  db:count("default", "tokens_saved", 1234)
  db:count("default", "cost_saved", 0.5)
  db:count("default", "time_saved_ms", 61000)
  -- a tiny saving (three cheap hits): still shown as what it is, not $0.0000
  assert(db:put("tiny", C.sha256("t"), "v"))
  db:count("tiny", "hits_exact", 3)
  db:count("tiny", "cost_saved", 0.0000312)
  c:close()'
expect_status 0

run cache stats
expect_status 0
expect_out_has "5 responses"
expect_out_has "default                 6                6/0/0        2    75.0%         1,234     \$0.5000      1m 01s"
expect_out_has "other"
expect_out_has "\$0.0000312"

run cache stats --json -n default
expect_status 0
expect_out_has '"hits":6'
expect_out_has '"hit_rate":0.75'
expect_out_has '"namespace":"default"'
[[ "$out" != *'"other"'* ]] && ok || fail "-n default listed another namespace"

sleep 0.05
run cache clear --expired
expect_status 0
expect_out "removed 1 expired response"

run cache clear -n default
expect_status 0
expect_out "removed 3 responses from namespace default"

run cache check
expect_status 0
expect_out "$TMP/xdg/llmrun/cache.db: ok"

run cache
expect_status 2
expect_err_has "which one: stats, clear, path or check?"

run cache frobnicate
expect_status 2
expect_err_has "unknown subcommand 'frobnicate'"

run cache stats --bogus
expect_status 2

run cache --help
expect_status 0
expect_out_has "usage: llmrun cache stats"

printf 'not a database at all, just some text that is long enough to look like a header......' \
  >"$TMP/bad.db"
run cache stats --path "$TMP/bad.db"
expect_status 1
expect_err_has "not a usable sqlite database"

finish
