# llmrun logs and llmrun report: an empty log, a missing run id, the
# formats, exit codes, `prompt -n`, and the llm.map progress line on a
# real terminal (under script(1)).
source "$(dirname "$0")/lib.sh"

export XDG_DATA_HOME="$TMP/data"
DB="$XDG_DATA_HOME/llmrun/runs.db"

# is_json TEXT: every non-empty line parses as JSON (checked by llmrun's cjson)
is_json_lines() {
  printf '%s\n' "$1" | "$LLMRUN" -e '
    local cjson = require "cjson"
    local n = 0
    for line in io.stdin:lines() do
      if line ~= "" then assert(cjson.decode(line)); n = n + 1 end
    end
    assert(n > 0, "no JSON at all")'
}

# ---- an empty log -------------------------------------------------------------
run logs
expect_status 0
expect_err_has "no calls logged yet"
run logs --json
expect_status 0
expect_out ""
run report
expect_status 1
expect_err_has "no call log at $DB"
run logs --path
expect_status 0
expect_out "$DB"
run logs -n many
expect_status 2
expect_err_has "-n needs a count"

# ---- some calls: two tags over the same cases ---------------------------------------
run -e '
  llm.log.on()
  local calls, response = require "llm.calls", require "llm.response"
  local m = { name = "gpt-4o-mini", provider = "sim", simulated = true }
  for i = 1, 20 do
    for _, v in ipairs { { "baseline", 300 }, { "optimized", 120 } } do
      local c = calls.begin(m, "chat", {}, { tag = v[1], case = "case-" .. i })
      c.t0 = c.t0 - v[2] / 1000
      calls.finish(c, response.new { text = "x", latency_ms = v[2] + i, ttft_ms = v[2] / 3,
        usage = { prompt_tokens = 200, completion_tokens = 20 }, cost = v[2] * 1e-6, cached = false })
    end
  end
  local c = calls.begin(m, "chat", {}, { tag = "optimized", case = "case-1" })
  calls.finish(c, nil, llm.error("http", "overloaded", { status = 529 }))
  print(llm.log.run_id())'
expect_status 0
RUN_ID=$out
[[ -n "$RUN_ID" && -f "$DB" ]] && ok || fail "no run id or database"

run logs
expect_status 0
expect_out_has "gpt-4o-mini"
expect_out_has "error (http 529)"
lines=$(printf '%s\n' "$out" | wc -l)
[[ $lines -eq 21 ]] && ok || fail "logs: $lines lines, want header + 20"
run logs -n 2
expect_status 0
lines=$(printf '%s\n' "$out" | wc -l)
[[ $lines -eq 3 ]] && ok || fail "logs -n 2: $lines lines"
run logs -n 0 --json --run "${RUN_ID:0:15}"
expect_status 0
lines=$(printf '%s\n' "$out" | wc -l)
[[ $lines -eq 41 ]] && ok || fail "logs -n 0 --json: $lines lines, want 41"
is_json_lines "$out" && ok || fail "logs --json is not JSON lines"
run logs --runs
expect_status 0
expect_out_has "$RUN_ID"
expect_out_has "41"
run logs --run nosuchrun
expect_status 1
expect_err_has "no run matches 'nosuchrun'"

# ---- report ------------------------------------------------------------------------
run report
expect_status 0
expect_out_has "llmrun report: run $RUN_ID"
expect_out_has "SIMULATED"
expect_out_has "paired by case (20 cases)"
expect_out_has "better"
[[ "$out" != *$'\e['* ]] && ok || fail "colour codes without a terminal"
run report "$RUN_ID" --json
expect_status 0
is_json_lines "$out" && ok || fail "report --json is not JSON"
expect_out_has '"baseline":"baseline"'
run report --csv
expect_status 0
expect_out_has "metric,label,unit,variant,value"
run report --markdown
expect_status 0
expect_out_has "| metric | baseline | optimized |"
run report --html "$TMP/r.html"
expect_status 0
expect_err_has "wrote $TMP/r.html"
for id in chart-latency-cdf chart-ttft-hist chart-cost chart-tokens; do
  grep -q "<svg id=\"$id\"" "$TMP/r.html" && ok || fail "HTML lacks $id"
done
run report --by model
expect_status 0
expect_out_has "1 variant (gpt-4o-mini)"
run report nosuchrun
expect_status 1
expect_err_has "no run matches 'nosuchrun'"
run report --json --csv
expect_status 2
run report --by colour
expect_status 2
run report --html /nonexistent-dir/r.html
expect_status 1
expect_err_has "cannot write /nonexistent-dir/r.html"

# --reprice: refused clearly without prices; through a stand-in with them
if "$LLMRUN" -e 'require "llm.pricing"' 2>/dev/null; then
  run report --reprice gpt-4o
  expect_status 0
  expect_out_has "cost repriced as gpt-4o"
  run report --reprice gpt-4o,batch --json
  expect_status 0
  expect_out_has '"label":"cost repriced as gpt-4o, batch"'
  run report --reprice no-such-model-xyz
  expect_status 1
  expect_err_has "cannot reprice as no-such-model-xyz"
else
  run report --reprice gpt-4o
  expect_status 1
  expect_err_has "--reprice needs prices"
fi
run -e '
  package.preload["llm.pricing"] = function()
    return { reprice = function(records) local out = {}
      for i, r in ipairs(records) do out[i] = (r.prompt_tokens or 0) * 1e-7 end return out end }
  end
  require("llm.cli").run("report", { "--reprice", "gpt-4o", "--markdown" })'
expect_status 0
expect_out_has "cost repriced as gpt-4o"

# ---- prompt -n: no row ---------------------------------------------------------------
if [[ -x "${MOCKHTTP:-}" ]]; then
  body='{"id":"c","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'
  printf 'status 200\nheader Content-Type: application/json\nbody %s\n' "$body" >"$TMP/script"
  coproc MOCK { "$MOCKHTTP" "$TMP/script" "$TMP/mock.log" 30; }
  read -r port pid <&"${MOCK[0]}"
  before=$("$LLMRUN" logs -n 0 --json | wc -l)
  OPENAI_BASE_URL="http://127.0.0.1:$port/v1" OPENAI_API_KEY=k run prompt --no-stream -n hi
  expect_status 0
  expect_out "hello"
  after=$("$LLMRUN" logs -n 0 --json | wc -l)
  [[ $after -eq $before ]] && ok || fail "prompt -n logged a call ($before -> $after)"
  OPENAI_BASE_URL="http://127.0.0.1:$port/v1" OPENAI_API_KEY=k run prompt --no-stream hi
  after=$("$LLMRUN" logs -n 0 --json | wc -l)
  [[ $after -eq $((before + 1)) ]] && ok || fail "prompt did not log its call ($before -> $after)"
  kill "$pid" 2>/dev/null
  wait 2>/dev/null
else
  fail "MOCKHTTP is not set (run through ctest)"
fi

# ---- the progress line on a terminal -------------------------------------------------
MAP='local t = {} for i = 1, 8 do t[i] = i end
llm.map(t, function() llm.sleep(0.02) end, { concurrency = 2 }) print("mapped")'
if command -v script >/dev/null; then
  tty_out=$(TERM=xterm NO_COLOR= script -qec "$LLMRUN -e '$MAP'" /dev/null 2>&1)
  [[ "$tty_out" == *"8/8"* && "$tty_out" == *"mapped"* ]] && ok || fail "no progress line on a terminal: $tty_out"
  tty_out=$(TERM=xterm NO_COLOR=1 script -qec "$LLMRUN -e '$MAP'" /dev/null 2>&1)
  [[ "$tty_out" != *"8/8"* ]] && ok || fail "a progress line despite NO_COLOR"
  tty_out=$(TERM=dumb NO_COLOR= script -qec "$LLMRUN -e '$MAP'" /dev/null 2>&1)
  [[ "$tty_out" != *"8/8"* ]] && ok || fail "a progress line despite TERM=dumb"
else
  echo "note: script(1) is missing, the terminal progress checks did not run" >&2
fi
run -e "$MAP"
expect_err_empty

finish
