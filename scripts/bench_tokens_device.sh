#!/usr/bin/env bash
# Tokenizer throughput on another machine, one thread: llmrun's tokenizer
# against Python's tiktoken (Rust core) on the same files in one run, with
# a check that their ids are identical. Needs python3 with tiktoken; no
# network, no compiler: BIN is a prebuilt build/bpe_bench (static, carries
# the vocabularies) or an llmrun binary that runs there.
#
#   scripts/bench_tokens_device.sh BIN CORPUS_DIR [TIMEOUT_S]
#
# CORPUS_DIR: e.g. tests/tokens/corpus of this repository; the adversarial
# runs of tests/tokens/adversarial.spec are added. Python's tiktoken gets
# its rank files from src/bpe/vocab (through TIKTOKEN_CACHE_DIR), so nothing is
# downloaded. tiktoken's quadratic merge makes the adversarial file slow
# for it: the Python side stops after TIMEOUT_S seconds (default 120),
# keeping the results so far, so the whole run stays under 3 minutes.
# Target (issue 5): llmrun >= 3x tiktoken per file.
#
# --quick (the test suite's run): this build's bpe_bench over two small
# corpus files, once; the Python side only where tiktoken is installed
# (it is not on the development machine, so there only llmrun's figures
# are printed, and the script says so).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
quick=0 reps=5 py_reps=3
if [[ "${1:-}" == "--quick" ]]; then
  quick=1 reps=1 py_reps=1
  shift
  build=${BUILD_DIR:-$root/build}
  set -- "${1:-$build/bpe_bench}" "${2:-$root/tests/tokens/corpus}" "${3:-60}"
fi
bin=${1:?usage: bench_tokens_device.sh [--quick] BIN CORPUS_DIR [TIMEOUT_S]}
corpus=${2:?usage: bench_tokens_device.sh [--quick] BIN CORPUS_DIR [TIMEOUT_S]}
limit=${3:-120}
encs=cl100k_base,o200k_base
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

have_py=1
python3 -c 'import tiktoken, sys; print("python", sys.version.split()[0], "tiktoken", tiktoken.__version__)' ||
  have_py=0
if [[ $have_py == 0 ]]; then
  [[ $quick == 1 ]] || { echo "bench_tokens_device.sh: python3 with tiktoken is needed" >&2; exit 1; }
  echo "(Python tiktoken is not installed here: llmrun's figures only, no baseline)"
fi
nproc | sed 's/^/cores: /'
grep -m1 'model name' /proc/cpuinfo || true

# tiktoken caches each rank file under sha1(its URL) and checks its sha256.
mkdir -p "$work/cache"
for e in ${encs//,/ }; do
  key=$(printf '%s' "https://openaipublic.blob.core.windows.net/encodings/$e.tiktoken" | sha1sum | cut -d' ' -f1)
  cp "$root/src/bpe/vocab/$e.tiktoken" "$work/cache/$key"
done
export TIKTOKEN_CACHE_DIR="$work/cache"

mkdir -p "$work/files"
if [[ $quick == 1 ]]; then
  cp "$corpus"/en_prose.txt "$corpus"/scripts.txt "$work/files/"
else
  cp "$corpus"/*.txt "$work/files/"
fi
python3 - "$root/tests/tokens/adversarial.spec" "$work/files/zz_adversarial.txt" <<'EOF'
import re, sys
parts = []
for line in open(sys.argv[1]):
    m = re.match(r"^(\d+) ([0-9a-f]+)\s*$", line)
    if m:
        parts.append(bytes.fromhex(m.group(2)) * int(m.group(1)))
open(sys.argv[2], "wb").write(b"".join(parts))
EOF
files=("$work"/files/*.txt)

# llmrun
if "$bin" --version 2>/dev/null | grep '^llmrun' >/dev/null; then
  LLMRUN_LUALIB="$root/lualib" "$bin" "$root/tests/bench/tokens_bench.lua" "$reps" "$encs" "${files[@]}" \
    >"$work/llmrun.txt"
else
  flags=()
  for e in ${encs//,/ }; do flags+=(-e "$e"); done
  "$bin" -r "$reps" "${flags[@]}" "${files[@]}" >"$work/llmrun.txt"
fi
if [[ $have_py == 0 ]]; then
  awk '{ n = $1; sub(".*/", "", n); printf "%-22s %-12s %9d bytes %8.2f MB/s\n", n, $2, $3, $5 }' "$work/llmrun.txt"
  exit 0
fi

# Python tiktoken: 3 repeats, the adversarial file once, within the limit
status=0
timeout "$limit" bash -c '
  python3 "$0/tests/bench/tiktoken_bench.py" "$2" "$1" "${@:3:$#-3}" &&
  python3 "$0/tests/bench/tiktoken_bench.py" 1 "$1" "${@: -1}"
' "$root" "$encs" "$py_reps" "${files[@]}" >"$work/tiktoken.txt" || status=$?
[[ $status -eq 124 ]] && echo "(Python tiktoken stopped after ${limit}s; results so far below)"

awk '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
  }
  FNR == NR { k = $1 " " $2; ours[k] = $5; ids[k] = $6; next }
  {
    k = $1 " " $2; name = $1; sub(".*/", "", name)
    same = ids[k] == "-" ? "-" : ($6 == ids[k]) ? "identical" : "DIFFERENT"
    r = ours[k] / $5
    printf "%-22s %-12s %9d %8.2f %8.2f %7.1fx  %s\n", name, $2, $3, ours[k], $5, r, same
    n++; ratio[n] = r; if (r < 3) slow++
    if (same == "DIFFERENT") bad++
  }
  BEGIN { printf "%-22s %-12s %9s %8s %8s %8s\n", "file", "encoding", "bytes", "llmrun", "tiktoken", "ratio"
          printf "%-22s %-12s %9s %8s %8s\n", "", "", "", "MB/s", "MB/s" }
  END {
    if (n) printf "%d results: median ratio %.1fx, minimum target 3x missed by %d\n", n, median(ratio, n), slow
    if (bad) printf "%d results DIFFER from Python tiktoken\n", bad
  }
' "$work/llmrun.txt" "$work/tiktoken.txt"
