#!/usr/bin/env bash
# Real clients through the gateway, unchanged: the official `openai` and
# `@anthropic-ai/sdk` npm packages (pinned below) against `llmrun serve
# --proxy` in front of the simulator: chat, streams, tools, embeddings,
# models and errors (tests/cli/proxy_sdk_compat.js); then the call log has
# their calls under the tags their headers gave. The Anthropic client's
# requests go through the gateway's translation to the simulator's OpenAI
# API. The packages are installed once with npm into a cache under the
# build tree (tests/cli/sdk_lib.sh; without node/npm the test is skipped,
# saying why).
set -u
OPENAI_VERSION=6.49.0    # as test_openai_sdk_compat.sh: 7.x needs Node >= 22
ANTHROPIC_VERSION=0.71.2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/sdk_lib.sh"

sdk_require_node 18 "the SDKs need fetch"
openai_dir=$(sdk_dir openai-node-$OPENAI_VERSION)
anthropic_dir=$(sdk_dir anthropic-node-$ANTHROPIC_VERSION)
sdk_install "$openai_dir" "openai@$OPENAI_VERSION"
sdk_install "$anthropic_dir" "@anthropic-ai/sdk@$ANTHROPIC_VERSION"

tmp=$(mktemp -d)
export XDG_DATA_HOME=$tmp/data XDG_CACHE_HOME=$tmp/cache LLMRUN_SIM_PROFILE=zero
sdk_serve "$tmp" serve --proxy --port 0 --cache
echo "openai@$OPENAI_VERSION and @anthropic-ai/sdk@$ANTHROPIC_VERSION (node $(node --version)) through $url"
timeout 120 node "$here/proxy_sdk_compat.js" "$url" "$openai_dir" "$anthropic_dir"
status=$?
sdk_stop
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
