#!/usr/bin/env bash
# Runs every benchmark of a build folder (default build/): build/bench/bench_* binaries, then bench/*.sh scripts.
set -u
cd "$(dirname "$0")/.."
dir=${1:-build}
status=0
for b in "$dir"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b" || status=1
done
for s in bench/*.sh; do
  [ "$(basename "$s")" = run.sh ] && continue
  echo "== $(basename "$s")"
  bash "$s" "$dir" || status=1
done
exit $status
