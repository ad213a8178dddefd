#!/usr/bin/env bash
# Compatibility with a client we did not write: the official
# `@anthropic-ai/sdk` npm package (pinned below) against `llmrun serve
# --sim`: messages.create, streaming (raw events and the stream helper),
# tools over two turns, extended thinking, a 529 and a 429 the SDK retries,
# typed errors, an error event mid-stream, Message Batches (create,
# retrieve, list, results, delete) (tests/cli/anthropic_sdk_compat.js).
# Node is a test oracle only; llmrun never needs it.
#
# The package is installed once with npm into a cache under the build tree
# (tests/cli/sdk_lib.sh; without node/npm the test is skipped, saying why).
set -u
SDK_VERSION=1.17.0 # the newest at writing; it declares no engines and runs on Node 20 (CI)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/sdk_lib.sh"

sdk_require_node 18 "the SDK needs fetch"
cache=$(sdk_dir anthropic-node-$SDK_VERSION)
sdk_install "$cache" "@anthropic-ai/sdk@$SDK_VERSION"
tmp=$(mktemp -d)
sdk_serve "$tmp" serve --sim --port 0 --profile zero

echo "@anthropic-ai/sdk@$SDK_VERSION (node $(node --version)) against ${url%/v1}"
timeout 120 node "$here/anthropic_sdk_compat.js" "${url%/v1}" "$cache"
status=$?
sdk_stop
exit $status
