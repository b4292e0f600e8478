#!/usr/bin/env bash
# Data parallelism on this machine (issue 18): training tok/s of 1 rank × 2 threads against 2 ranks × 1 thread
# (mpirun, shared memory) at the same global batch (1 rank: --accum 2; 2 ranks: --accum 1), and the gradient
# all-reduce per step under 2 ranks (allreduce_ms, and allreduce_gbps = bytes each rank sent / time: a ring of 2
# ranks sends the 4·params bytes of the gradient once), with our ring and with OpenMPI's MPI_Allreduce
# (JL_DIST_ALLREDUCE=mpi; its bytes counted as a ring's), and the step time with our ring overlapped with the
# backward pass (the default) against after it (JL_DIST_OVERLAP=0). The set-ups take turns (ROUNDS times each) so a
# loaded machine slows them alike; figures are medians over the steps after the first of each run.
#   bash bench/dist.sh [BUILD_DIR]
# Environment: SHAPES ("pipeline gpt2-124m"), STEPS (4), ROUNDS (1), SEQ (gpt2-124m rows, 256),
# BATCH (rows per micro-batch: pipeline 16, gpt2-124m 1), HOWS (the 2-rank set-ups, "ring flat mpi"; also zero:
# --zero 1). Per set-up: tok/s, step ms, and per step the all-reduce's ms, MB each rank sent, GB/s, the
# share of ring steps that landed during the backward pass, and the AdamW moments per rank.
# Shapes: pipeline = `jielong pipeline`'s model (llama depth 4, context 256, its 4096-token vocabulary shape);
# gpt2-124m = GPT-2 small (12 layers, 768 wide, 12 heads, the GPT-2 vocabulary of 50257, context 1024).
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build}
bin=$PWD/$dir/jielong
shapes=${SHAPES:-pipeline gpt2-124m} steps=${STEPS:-4} rounds=${ROUNDS:-1} seq=${SEQ:-256} hows=${HOWS:-ring flat mpi}
say() { echo "bench_dist: $*"; }
command -v mpirun >/dev/null || { say "mpirun not found (scripts/deps.sh installs openmpi-bin)"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=passive
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# a corpus of a few hundred kB (the repository's docs), and the GPT-2 vocabulary when it was fetched
for _ in 1 2 3 4; do cat README.md docs/DESIGN.md; done > "$work/corpus.txt"
gpt2_tok=""
if [ -f build/vocab/encoder.json ] && [ -f build/vocab/vocab.bpe ]; then
  "$bin" tokenizer import --encoder build/vocab/encoder.json --merges build/vocab/vocab.bpe \
    --output "$work/gpt2.json" >/dev/null 2>&1 && gpt2_tok="--tokenizer $work/gpt2.json"
fi

# median of the KEY values of a metrics file's step lines after the first
median() { sed -n "s/.*\"step\":\([0-9]*\),\"loss\".*\"$2\":\([-0-9.e+]*\).*/\1 \2/p" "$1" | awk '$1 > 1 { print $2 }' |
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

for shape in $shapes; do
  case $shape in
    pipeline) args="--depth 4 --context 256 --batch-size ${BATCH:-16}" ;;
    gpt2-124m)
      [ -n "$gpt2_tok" ] || { say "gpt2-124m skipped: no GPT-2 vocabulary in build/vocab (scripts/deps.sh)"; continue; }
      args="--arch gpt2 --n-layer 12 --dim 768 --n-head 12 --context 1024 --seq-len $seq --batch-size ${BATCH:-1}
            $gpt2_tok" ;;
    *) say "unknown shape $shape"; exit 2 ;;
  esac
  common="pretrain --data $work/corpus.txt $args --steps $steps --eval-every 0 --save-every 0 --lr 1e-3"
  for r in $(seq "$rounds"); do
    "$bin" $common --threads 2 --accum 2 --out "$work/one$r" >"$work/log" 2>&1 ||
      { say "1 rank failed:"; tail -5 "$work/log"; exit 1; }
    line="$shape round $r: 1 rank x 2 threads $(median "$work/one$r/metrics.jsonl" tok_per_s) tok/s,"
    line="$line step $(median "$work/one$r/metrics.jsonl" ms) ms"
    for how in $hows; do
      # ring: ours, overlapped with the backward (the default); flat: ours after the backward; mpi: MPI_Allreduce;
      # zero: ours overlapped, with --zero 1 (the parameters' all-gather counted in the all-reduce figures)
      case $how in ring|flat|mpi|zero) ;; *) say "unknown set-up $how (HOWS: ring flat mpi zero)"; exit 2 ;; esac
      JL_DIST_ALLREDUCE=$([ $how = mpi ] && echo mpi || echo ring) JL_DIST_OVERLAP=$([ $how = flat ] && echo 0 || echo 1) \
        timeout 1200 mpirun --host localhost:2 -np 2 "$bin" $common --threads 1 $([ $how = zero ] && echo --zero 1) \
        --out "$work/$how$r" >"$work/log" 2>&1 || { say "2 ranks ($how) failed:"; tail -5 "$work/log"; exit 1; }
      m=$work/$how$r/metrics.jsonl
      ms=$(median "$m" allreduce_ms) gbps=$(median "$m" allreduce_gbps)
      line="$line; 2 ranks x 1 thread ($how) $(median "$m" tok_per_s) tok/s, step $(median "$m" ms) ms, all-reduce"
      line="$line $ms ms, $(median "$m" allreduce_mb) MB sent, $gbps GB/s per rank"
      case $how in mpi|flat) ;; *) line="$line, $(median "$m" allreduce_overlapped) of ring steps during the backward" ;; esac
      line="$line, AdamW moments $(median "$m" adam_mb) MB per rank"
    done
    say "$line"
  done
done
