#!/usr/bin/env bash
# Compatibility with a client we did not write: the official `openai` npm
# package (pinned below) against `llmrun serve --sim`: chat, streaming with
# include_usage, embeddings, a 429 the SDK retries, tool calls over two turns,
# a reasoning model's usage and refusal, an error mid-stream
# (tests/cli/openai_sdk_compat.js). Node is a test oracle only; llmrun
# never needs it.
#
# The package is installed once with npm into a cache under the build tree.
# Without node/npm, or when the registry cannot be reached, the test exits
# 77, which ctest reports as skipped (SKIP_RETURN_CODE), and says why.
set -u
SDK_VERSION=6.49.0 # the newest 6.x: 7.x needs Node >= 22, Debian 12 CI has 20
SKIP=77
LLMRUN=${LLMRUN:-llmrun}
here=$(cd "$(dirname "$0")" && pwd)

skip() { echo "SKIPPED: $*"; exit $SKIP; }

command -v node >/dev/null 2>&1 || skip "node is not installed (scripts/setup installs it)"
command -v npm >/dev/null 2>&1 || skip "npm is not installed (scripts/setup installs it)"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[[ $major -ge 18 ]] || skip "node $(node --version) is older than 18, which openai@$SDK_VERSION needs"

# the build tree holds the binary; the cache lives beside it
cache=$(cd "$(dirname "$LLMRUN")" && pwd)/test-cache/openai-node-$SDK_VERSION
if [[ ! -f $cache/node_modules/openai/package.json ]]; then
  mkdir -p "$cache"
  if ! timeout 180 npm install --prefix "$cache" --no-audit --no-fund --no-save \
       --loglevel=error "openai@$SDK_VERSION" >"$cache/npm.log" 2>&1; then
    tail -n 5 "$cache/npm.log"
    rm -rf "$cache/node_modules"
    skip "npm could not install openai@$SDK_VERSION (is the registry reachable?)"
  fi
fi

tmp=$(mktemp -d)
"$LLMRUN" serve --sim --port 0 --profile zero >"$tmp/out" 2>"$tmp/err" &
pid=$!
trap 'kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
url=
for _ in $(seq 100); do
  url=$(head -n1 "$tmp/out" 2>/dev/null)
  [[ -n $url ]] && break
  sleep 0.05
done
if [[ -z $url ]]; then
  echo "FAIL: llmrun serve --sim did not start"; cat "$tmp/err"; exit 1
fi

echo "openai@$SDK_VERSION (node $(node --version)) against $url"
timeout 120 node "$here/openai_sdk_compat.js" "$url" "$cache"
status=$?
kill -INT "$pid"
wait "$pid"
exit $status
