# Sourced by every scripts/bench_* script: where the build is, and quick mode.
#
#   bench_init "$@"; set -- "${BENCH_ARGS[@]}"
#
# --quick as the first argument (or BENCH_QUICK=1) asks for the quick mode:
# a few seconds, the same code paths, figures printed, no target judged.
# The test suite runs every benchmark that way so none of them rots.
# BUILD_DIR picks the build (default build/); NO_BUILD=1 uses it as it is
# instead of building first (the test suite sets both).
# Not a benchmark itself: the test suite skips this file by its name.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bench_init() {
  quick=0
  [[ ${BENCH_QUICK:-0} == 1 ]] && quick=1
  if [[ "${1:-}" == "--quick" ]]; then quick=1; shift; fi
  BENCH_ARGS=("$@")
  build=${BUILD_DIR:-$root/build}
  if [[ ${NO_BUILD:-0} != 1 ]]; then
    BUILD_DIR=$build "$root/scripts/build"
  fi
  bin=${LLMRUN:-$build/llmrun}
  [[ -x $bin ]] || { echo "$(basename "$0"): no llmrun at $bin (build first)" >&2; exit 1; }
  if [[ $quick == 1 ]]; then
    echo "($(basename "$0") in quick mode: small sizes, figures only, no target judged)"
  fi
}

# "say TARGET_TEXT OK?" helper for summaries: in quick mode targets are not judged.
judge() { # judge <0|1>
  if [[ $quick == 1 ]]; then echo "(not judged)"; elif [[ $1 == 1 ]]; then echo ok; else echo MISSED; fi
}

# seconds since the epoch with nanoseconds, and a difference, without bc
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
