#!/usr/bin/env bash
# Run every benchmark: full size by default (records figures), or `--smoke` (tiny, records nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
for bench in benchmarks/bench_*.py; do
  echo "== $bench $*"
  python "$bench" "$@"
done
