#!/usr/bin/env bash
# Runs every benchmark: each build/bench/bench_* binary (no arguments), then each bench/*.sh with the build folder.
set -u
cd "$(dirname "$0")/.."
build=${1:-build}
status=0
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $b"
  "$b" || status=1
done
for s in bench/*.sh; do
  [ "$(basename "$s")" = run.sh ] && continue
  echo "== $s"
  bash "$s" "$build" || status=1
done
exit $status
