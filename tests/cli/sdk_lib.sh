# Shared by the tests that run an official SDK (npm) against llmrun: the
# Node checks, a once-per-build-tree npm install, and starting an llmrun
# server that prints its URL. Node is a test oracle only; llmrun never
# needs it. Without node/npm, or when the registry cannot be reached, a
# test exits 77, which ctest reports as skipped (SKIP_RETURN_CODE), and
# says why.
SKIP=77
LLMRUN=${LLMRUN:-llmrun}

skip() { echo "SKIPPED: $*"; exit $SKIP; }

# sdk_require_node MIN_MAJOR WHY
sdk_require_node() {
  command -v node >/dev/null 2>&1 || skip "node is not installed (scripts/setup installs it)"
  command -v npm >/dev/null 2>&1 || skip "npm is not installed (scripts/setup installs it)"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  [[ $major -ge $1 ]] || skip "node $(node --version) is older than $1 ($2)"
}

# sdk_dir NAME-VERSION: the package cache beside the binary, in the build tree
sdk_dir() { echo "$(cd "$(dirname "$LLMRUN")" && pwd)/test-cache/$1"; }

# sdk_install DIR PACKAGE@VERSION: installs once (scripts/npm_install, which
# also keeps two tests from installing into one DIR at once); skips the
# test when npm fails
sdk_install() {
  "$(dirname "${BASH_SOURCE[0]}")/../../scripts/npm_install" "$1" "$2" ||
    skip "npm could not install $2 (is the registry reachable?)"
}

# sdk_serve TMP ARGS...: starts `llmrun ARGS` (a server that prints its URL
# on its first line), sets pid and url, and kills it on exit.
sdk_serve() {
  sdk_tmp=$1
  shift
  "$LLMRUN" "$@" >"$sdk_tmp/out" 2>"$sdk_tmp/err" &
  pid=$!
  trap 'kill "$pid" 2>/dev/null; rm -rf "$sdk_tmp"' EXIT
  url=
  for _ in $(seq 100); do
    url=$(head -n1 "$sdk_tmp/out" 2>/dev/null)
    [[ -n $url ]] && break
    sleep 0.05
  done
  if [[ -z $url ]]; then
    echo "FAIL: llmrun $* did not start"; cat "$sdk_tmp/err"; exit 1
  fi
}

# sdk_stop: stops the server as Ctrl-C would and waits for it
sdk_stop() {
  kill -INT "$pid"
  wait "$pid"
}
