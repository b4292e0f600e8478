#!/usr/bin/env bash
# Runs every libFuzzer harness of a build folder for SECONDS each on its seed corpus (BUILD/corpus/NAME, from
# fuzz/seeds.sh) with its dictionary (fuzz/dict/NAME.dict, else json.dict for the JSON formats), new inputs
# kept in BUILD/corpus/NAME. Prints one line per harness (runs, execs/s, coverage, features, corpus) and fails
# when a harness crashes (its reproducer is left in BUILD/crashes/NAME/).
# usage: fuzz/run.sh BUILD SECONDS [NAME...]; env FUZZ_JOBS (parallel harnesses, default 1), FUZZ_NICE
set -u
cd "$(dirname "$0")/.."
build=${1:-build/fuzz}; secs=${2:-30}; shift 2 || true
names=("$@")
[ ${#names[@]} -eq 0 ] && for b in "$build"/fuzz_*; do [ -x "$b" ] && names+=("$(basename "$b")"); done
# A 16 MB quarantine (default 256 MB) and 5-frame allocation stacks: every freed chunk passing through 256 MB of
# fresh pages made page faults ~30% of an execution; a use after free is still caught for the next 16 MB of frees
# (hundreds of executions) and still reported with its stack (fuzz_encode, fuzz_gguf: ~1.7x the executions)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:quarantine_size_mb=16:malloc_context_size=5}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
failed=0
for name in "${names[@]}"; do
  corpus="$build/corpus/$name"; crashes="$build/crashes/$name"; log="$build/logs/$name.log"
  mkdir -p "$corpus" "$crashes" "$build/logs"
  dict="fuzz/dict/${name#fuzz_}.dict"; [ -f "$dict" ] || dict=fuzz/dict/json.dict
  # the largest input a mutation may make: a tiny model's size for the model formats (the catalogue's width-32
  # model, though the seeds are width 8), a tokenizer.json of the seeds' size, the request-size limit for HTTP;
  # 4 KB for the text formats (many records, templates, bodies; 64 KB inputs made executions 6-8x slower)
  case $name in
    fuzz_safetensors|fuzz_gguf|fuzz_llmc) max=200000 ;;
    fuzz_tokenizer_json) max=8192 ;;
    fuzz_serve_http|fuzz_hf_config|fuzz_shard) max=65536 ;;
    *) max=4096 ;;
  esac
  ${FUZZ_NICE:-} "$build/$name" -max_total_time="$secs" -timeout=20 -rss_limit_mb=3000 -max_len=$max \
    -dict="$dict" -artifact_prefix="$crashes/" -print_final_stats=1 "$corpus" >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  files=$(ls "$corpus" | wc -l)
  if [ $rc -ne 0 ]; then
    failed=$((failed + 1)); echo "FAIL $name (rc=$rc): see $log and $crashes/"; tail -n 30 "$log"
  else
    echo "ok   $name: ${runs:-?} runs in ${secs}s, ${speed:-?} exec/s, cov ${cov:-?}, ft ${ft:-?}, corpus $files"
  fi
done
[ $failed -eq 0 ]
