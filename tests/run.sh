#!/usr/bin/env bash
# Runs every test binary of the given build folders (cmocka), then prints one line "N passed, N failed".
# Tests find the CLI as $JL_BIN and their scratch space under $JL_TMP.
set -u
cd "$(dirname "$0")/.."
passed=0; failed=0; failed_names=()
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Small test models run many tiny parallel regions: sleeping (not spinning) threads keep them fast on a busy machine.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
for dir in "$@"; do
  for t in "$dir"/tests/test_*; do
    [ -x "$t" ] || continue
    name="$dir/$(basename "$t")"
    log=$(mktemp)
    tmpd=$(mktemp -d)
    start=$(date +%s)
    JL_BIN="$PWD/$dir/jielong" JL_TMP="$tmpd" JL_ROOT="$PWD" "$t" >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    ok=$(grep -c '^\[       OK \]' "$log")
    bad=$(grep -c '^\[  FAILED  \] [a-z_]' "$log")
    if [ $rc -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi   # crashed, sanitizer report, or setup failure
    passed=$((passed + ok)); failed=$((failed + bad))
    if [ "$bad" -ne 0 ]; then
      failed_names+=("$name"); echo "---- $name FAILED (rc=$rc, ${secs}s) ----"; tail -n 60 "$log"
    else
      echo "ok   $name: $ok tests (${secs}s)"
    fi
    rm -rf "$log" "$tmpd"
  done
done
# Script tests (tests/test_*.sh: end-to-end walkthroughs through the CLI, printing cmocka-style OK/FAILED lines)
# run once, against the first build folder's binary: they check commands, not memory, and the sanitizer build
# runs the same code paths in the cmocka tests.
for t in tests/test_*.sh; do
  [ -f "$t" ] || continue
  dir=$1
  name="$dir/$(basename "$t")"
  log=$(mktemp)
  tmpd=$(mktemp -d)
  start=$(date +%s)
  JL_BIN="$PWD/$dir/jielong" JL_TMP="$tmpd" JL_ROOT="$PWD" bash "$t" >"$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  ok=$(grep -c '^\[       OK \]' "$log")
  bad=$(grep -c '^\[  FAILED  \]' "$log")
  if [ $rc -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
  passed=$((passed + ok)); failed=$((failed + bad))
  if [ "$bad" -ne 0 ]; then
    failed_names+=("$name"); echo "---- $name FAILED (rc=$rc, ${secs}s) ----"; tail -n 60 "$log"
  else
    echo "ok   $name: $ok steps (${secs}s)"
  fi
  rm -rf "$log" "$tmpd"
done
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
