#!/usr/bin/env bash
# The HTML report in a real browser: a small experiment on the simulator
# (zero latency profile; sleeps make latencies differ, a few cases fail)
# writes its report, and scripts/check_report_html opens it in headless
# Chromium: charts drawn, no console error, nothing fetched, the per-case
# table complete, and its filter and sort working (the page opened with
# #filter=failures&sort=latency-1:desc), with screenshots. Without
# Chromium (scripts/setup installs it) the test says so and exits 77,
# which ctest reports as skipped.
source "$(dirname "$0")/lib.sh"

export XDG_DATA_HOME="$TMP/data" XDG_CACHE_HOME="$TMP/cache" LLMRUN_SIM_PROFILE=zero
root="${LLMRUN_SOURCE_DIR:-.}"
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  echo "SKIPPED: Chromium is not installed (scripts/setup installs it)"
  exit 77
fi

cat >"$TMP/report.lua" <<'LUA'
local m = llm.model "gpt-4o-mini"
local cases = {}
for i = 1, 12 do
  cases[i] = { id = "q" .. i, question = ("What is %d + %d?"):format(i, 100 + i), answer = tostring(100 + 2 * i) }
end
-- a real call (tokens and cost for the charts), with an answer the test
-- chooses: the simulator's accuracy is not what is tested here
local function answer(c, text)
  local r = assert(m:chat(c.question))
  r.text = text
  return r
end
local cmp = llm.experiment {
  title = "browser check", cases = cases, progress = false,
  variants = {
    -- slower for earlier cases, so "slowest first" is not the case order;
    -- every third case answered wrong on purpose
    { name = "first", run = function(c)
        llm.sleep((13 - tonumber(c.id:sub(2))) * 0.002)
        return answer(c, tonumber(c.id:sub(2)) % 3 == 0 and "wrong <b>html</b>" or c.answer)
      end },
    { name = "second", run = function(c) return answer(c, c.answer) end },
  },
  check = llm.check.equals(),
}
assert(cmp:html(arg[1]))
LUA
run "$TMP/report.lua" "$TMP/report.html"
expect_status 0
if [[ -s "$TMP/report.html" ]]; then ok; else fail "no report written"; fi

OUT="$TMP/check" SKIP_STATUS=77 "$root/scripts/check_report_html" "$TMP/report.html" >"$TMP/out" 2>"$TMP/err"
status=$?
out=$(cat "$TMP/out")
err=$(cat "$TMP/err")
echo "$out"
[[ $status -eq 77 ]] && { echo "SKIPPED: $out"; exit 77; }
expect_status 0
expect_out_has "ok: the case table has every case (12), all shown"
expect_out_has "ok: filter=failures shows the 4 failed cases of 12"
expect_out_has "ok: a screenshot of the case table"
if [[ "$out" != *FAIL* ]]; then ok; else fail "a browser check failed"; fi
# the answer's markup is shown as text, never run as HTML
if grep -q 'wrong &lt;b&gt;html&lt;/b&gt;' "$TMP/check/dom.html"; then ok; else fail "answer not escaped"; fi
finish
