# llmrun serve --proxy from the command line: options and their refusals,
# a strategy script that fails to load, and a running gateway with a
# strategy file and proxy keys, driven by a plain HTTP client (llmrun's
# _llm.http, nothing of the llm library): keys checked, the strategy
# applied, /metrics and /llmrun/stats, Ctrl-C ends it with its summary.
source "$(dirname "$0")/lib.sh"

export XDG_DATA_HOME="$TMP/data" XDG_CACHE_HOME="$TMP/cache" LLMRUN_SIM_PROFILE=zero
EX="${LLMRUN_SOURCE_DIR:-.}/examples"

run serve --proxy --help
expect_status 0
expect_out_has "--proxy-key K"

run serve --proxy --host 0.0.0.0
expect_status 2
expect_err_has "not a loopback address"

run serve --proxy --host 0.0.0.0 --allow-remote
expect_status 2
expect_err_has "--allow-remote needs --proxy-key"

run serve --proxy --cache semantic:7
expect_status 2
expect_err_has "--cache takes exact or semantic:THRESHOLD"

printf 'error("broken strategy")\n' >"$TMP/bad.lua"
run serve --proxy --script "$TMP/bad.lua"
expect_status 1
expect_err_has "broken strategy"

# a running gateway: the example's strategy, a proxy key, the cache
"$LLMRUN" serve --proxy --port 0 --cache --proxy-key pk-test --script "$EX/proxy_strategy.lua" \
  >"$TMP/url" 2>"$TMP/serve.err" &
pid=$!
url=
for _ in $(seq 100); do url=$(head -n1 "$TMP/url" 2>/dev/null); [[ -n $url ]] && break; sleep 0.05; done
[[ -n $url ]] || { cat "$TMP/serve.err"; fail "the gateway did not start"; }
cat >"$TMP/client.lua" <<'LUA'
local http = require "_llm.http"
local url = ...
local function post(body, key)
  local h = { "Content-Type: application/json", "x-llmrun-tag: cli" }
  if key then h[#h + 1] = "Authorization: Bearer " .. key end
  return assert(http.request { method = "POST", url = url .. "/chat/completions", headers = h, body = body })
end
local long = string.rep("The sky is blue on most days. ", 200) .. "The secret code is 4711. "
local body = require("cjson").encode { model = "gpt-4o", messages = {
  { role = "system", content = long }, { role = "user", content = "What is the secret code?" } } }
print("no key", post(body).status)
print("wrong key", post(body, "nope").status)
local r = post(body, "pk-test")
print("good key", r.status, require("cjson").decode(r.body).model)
local m = assert(http.request { method = "GET", url = url:gsub("/v1$", "") .. "/metrics" })
print("metrics", m.body:match('llmrun_proxy_requests_total{endpoint="chat"} (%d+)'))
LUA
out=$("$LLMRUN" "$TMP/client.lua" "$url" 2>"$TMP/client.err")
status=$?
expect_status 0
expect_out_has "no key	401"
expect_out_has "wrong key	401"
# the strategy compressed the context and routed the short request
expect_out_has "good key	200	gpt-4o-mini"
expect_out_has "metrics	3"
kill -INT "$pid"
wait "$pid"
status=$?
expect_status 130
err=$(cat "$TMP/serve.err")
expect_err_has "gateway answered 3 requests"
expect_err_has "strategy"
run logs -n 5
expect_status 0
expect_out_has "cli"

finish
