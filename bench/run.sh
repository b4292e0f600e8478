#!/usr/bin/env bash
# Runs every benchmark binary of a build folder (default build/) in turn.
set -u
cd "$(dirname "$0")/.."
dir=${1:-build}
status=0
for b in "$dir"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b" || status=1
done
exit $status
