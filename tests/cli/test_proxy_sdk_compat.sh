#!/usr/bin/env bash
# Real clients through the gateway, unchanged: the official `openai` and
# `@anthropic-ai/sdk` npm packages (pinned below) against `llmrun serve
# --proxy` in front of the simulator: chat, streams, tools, embeddings,
# models and errors (tests/cli/proxy_sdk_compat.js); then the call log has
# their calls under the tags their headers gave. The Anthropic client's
# requests are translated to the simulator's OpenAI API (the simulator has
# no /v1/messages on this branch).
#
# The packages are installed once with npm into a cache under the build
# tree. Without node/npm, or when the registry cannot be reached, the test
# exits 77, which ctest reports as skipped, and says why.
set -u
OPENAI_VERSION=6.49.0    # as test_openai_sdk_compat.sh: 7.x needs Node >= 22
ANTHROPIC_VERSION=0.71.2
SKIP=77
LLMRUN=${LLMRUN:-llmrun}
here=$(cd "$(dirname "$0")" && pwd)

skip() { echo "SKIPPED: $*"; exit $SKIP; }
command -v node >/dev/null 2>&1 || skip "node is not installed (scripts/setup installs it)"
command -v npm >/dev/null 2>&1 || skip "npm is not installed (scripts/setup installs it)"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[[ $major -ge 18 ]] || skip "node $(node --version) is older than 18"

base=$(cd "$(dirname "$LLMRUN")" && pwd)/test-cache
install() { # dir package@version
  if [[ ! -f $1/node_modules/${2%@*}/package.json ]]; then
    mkdir -p "$1"
    if ! timeout 180 npm install --prefix "$1" --no-audit --no-fund --no-save --loglevel=error "$2" \
         >"$1/npm.log" 2>&1; then
      tail -n 5 "$1/npm.log"
      rm -rf "$1/node_modules"
      skip "npm could not install $2 (is the registry reachable?)"
    fi
  fi
}
openai_dir=$base/openai-node-$OPENAI_VERSION
anthropic_dir=$base/anthropic-node-$ANTHROPIC_VERSION
install "$openai_dir" "openai@$OPENAI_VERSION"
install "$anthropic_dir" "@anthropic-ai/sdk@$ANTHROPIC_VERSION"

tmp=$(mktemp -d)
export XDG_DATA_HOME=$tmp/data XDG_CACHE_HOME=$tmp/cache LLMRUN_SIM_PROFILE=zero
"$LLMRUN" serve --proxy --port 0 --cache >"$tmp/out" 2>"$tmp/err" &
pid=$!
trap 'kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
url=
for _ in $(seq 100); do
  url=$(head -n1 "$tmp/out" 2>/dev/null)
  [[ -n $url ]] && break
  sleep 0.05
done
if [[ -z $url ]]; then
  echo "FAIL: llmrun serve --proxy did not start"; cat "$tmp/err"; exit 1
fi
echo "openai@$OPENAI_VERSION and @anthropic-ai/sdk@$ANTHROPIC_VERSION (node $(node --version)) through $url"
timeout 120 node "$here/proxy_sdk_compat.js" "$url" "$openai_dir" "$anthropic_dir"
status=$?
kill -INT "$pid"
wait "$pid"
# the call log has the proxied calls, with the tags from the clients' headers,
# and never a client's key
logs=$("$LLMRUN" logs -n 50 2>&1)
for tag in sdk-openai sdk-anthropic; do
  if ! grep -q "$tag" <<<"$logs"; then echo "FAIL: no call tagged $tag in llmrun logs"; echo "$logs"; status=1; fi
done
if grep -rqa "sk-client-key\|sk-ant-client-key" "$tmp/data" "$tmp/cache" "$tmp/err" 2>/dev/null; then
  echo "FAIL: a client key was written to the log, the cache or stderr"; status=1
fi
[[ $status == 0 ]] && echo "call log: tagged calls present, no client key stored"
exit $status
