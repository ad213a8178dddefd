#!/usr/bin/env bash
# Compatibility with a client we did not write: the official
# `@anthropic-ai/sdk` npm package (pinned below) against `llmrun serve
# --sim`: messages.create, streaming (raw events and the stream helper),
# tools over two turns, extended thinking, a 529 and a 429 the SDK retries,
# typed errors, an error event mid-stream, Message Batches (create,
# retrieve, list, results, delete) (tests/cli/anthropic_sdk_compat.js).
# Node is a test oracle only; llmrun never needs it.
#
# The package is installed once with npm into a cache under the build tree.
# Without node/npm, or when the registry cannot be reached, the test exits
# 77, which ctest reports as skipped (SKIP_RETURN_CODE), and says why.
set -u
SDK_VERSION=1.17.0 # the newest at writing; it declares no engines and runs on Node 20 (CI)
SKIP=77
LLMRUN=${LLMRUN:-llmrun}
here=$(cd "$(dirname "$0")" && pwd)

skip() { echo "SKIPPED: $*"; exit $SKIP; }

command -v node >/dev/null 2>&1 || skip "node is not installed (scripts/setup installs it)"
command -v npm >/dev/null 2>&1 || skip "npm is not installed (scripts/setup installs it)"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[[ $major -ge 18 ]] || skip "node $(node --version) is older than 18 (the SDK needs fetch)"

# the build tree holds the binary; the cache lives beside it
cache=$(cd "$(dirname "$LLMRUN")" && pwd)/test-cache/anthropic-node-$SDK_VERSION
if [[ ! -f $cache/node_modules/@anthropic-ai/sdk/package.json ]]; then
  mkdir -p "$cache"
  if ! timeout 180 npm install --prefix "$cache" --no-audit --no-fund --no-save \
       --loglevel=error "@anthropic-ai/sdk@$SDK_VERSION" >"$cache/npm.log" 2>&1; then
    tail -n 5 "$cache/npm.log"
    rm -rf "$cache/node_modules"
    skip "npm could not install @anthropic-ai/sdk@$SDK_VERSION (is the registry reachable?)"
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

echo "@anthropic-ai/sdk@$SDK_VERSION (node $(node --version)) against ${url%/v1}"
timeout 120 node "$here/anthropic_sdk_compat.js" "${url%/v1}" "$cache"
status=$?
kill -INT "$pid"
wait "$pid"
exit $status
