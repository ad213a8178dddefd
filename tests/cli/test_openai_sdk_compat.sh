#!/usr/bin/env bash
# Compatibility with a client we did not write: the official `openai` npm
# package (pinned below) against `llmrun serve --sim`: chat, streaming with
# include_usage, embeddings, a 429 the SDK retries, tool calls over two turns,
# a reasoning model's usage and refusal, an error mid-stream
# (tests/cli/openai_sdk_compat.js). Node is a test oracle only; llmrun
# never needs it.
#
# The package is installed once with npm into a cache under the build tree
# (tests/cli/sdk_lib.sh; without node/npm the test is skipped, saying why).
set -u
SDK_VERSION=6.49.0 # the newest 6.x: 7.x needs Node >= 22, Debian 12 CI has 20
here=$(cd "$(dirname "$0")" && pwd)
. "$here/sdk_lib.sh"

sdk_require_node 18 "openai@$SDK_VERSION needs 18"
cache=$(sdk_dir openai-node-$SDK_VERSION)
sdk_install "$cache" "openai@$SDK_VERSION"
tmp=$(mktemp -d)
sdk_serve "$tmp" serve --sim --port 0 --profile zero

echo "openai@$SDK_VERSION (node $(node --version)) against $url"
timeout 120 node "$here/openai_sdk_compat.js" "$url" "$cache"
status=$?
sdk_stop
exit $status
