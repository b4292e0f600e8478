#!/usr/bin/env bash
# Runs every benchmark of the given build folder: build/bench/bench_* binaries, then bench/*.sh scripts.
set -u
cd "$(dirname "$0")/.."
dir=${1:-build}
for b in "$dir"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b"
done
for s in bench/*.sh; do
  [ "$(basename "$s")" = run.sh ] && continue
  [ -x "$s" ] || continue
  echo "== $(basename "$s")"
  "$s" "$dir"
done
