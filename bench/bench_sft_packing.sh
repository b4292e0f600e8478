#!/usr/bin/env bash
# SFT packing benchmark on the pipeline's SFT set (jielong data poems): padding share, conversation tokens per
# second, and held-out loss after the same number of conversation tokens, packed vs one conversation per row,
# in the same run. Conversation tokens are counted alike in both modes: the n − 1 positions of a conversation
# of n tokens that predict its next token (the rest of a row is padding).
# Throughput: both modes with the same batch shape (BATCH rows of SEQ_LEN, the same steps, the same model), so a
# step costs about the same and packing puts about twice the conversation tokens in it. Held-out loss after the
# same conversation tokens: the unpacked run against a packed run of the same steps with fewer rows (as many
# as hold the unpacked batch's conversation tokens, about half), which also gives the ratio at equal
# conversation tokens per step (where the per-step costs that do not grow with the rows, the optimizer's,
# weigh twice as much in the packed run). The three runs take turns (ROUNDS times each) so a loaded machine
# slows them alike; ratios are of the medians.
#   bash bench/bench_sft_packing.sh [BUILD_DIR] [WORK_DIR]
# Environment: ROUNDS (3), SFT_STEPS (steps of each run, 60), PRETRAIN_STEPS (base model, 100),
# BATCH (8), SEQ_LEN (160, the pipeline's SFT rows), VAL (held-out conversations, 200), EVERY (train on every
# EVERY-th conversation of sft.jsonl, 8: 13.6k of its 109k, so each run's tokenisation stays short),
# THREADS (all cores). The model is the pipeline's: depth 4, context 256, its tokenizer.
# WORK_DIR is kept and reused (data, tokenizer and base model are built once); default: a temporary folder.
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build}
bin=$dir/jielong
work=${2:-}
keep=1
if [ -z "$work" ]; then work=$(mktemp -d); keep=0; fi
rounds=${ROUNDS:-3} steps=${SFT_STEPS:-60} psteps=${PRETRAIN_STEPS:-100}
batch=${BATCH:-8} len=${SEQ_LEN:-160} nval=${VAL:-200} every=${EVERY:-8}
threads=${THREADS:+--threads $THREADS}
say() { echo "bench_sft_packing: $*"; }

if [ ! -f "$work/base/model.safetensors" ]; then
  say "building the pipeline's data, tokenizer and a base model ($psteps pretraining steps) in $work"
  "$bin" data poems --out "$work/data" >/dev/null
  "$bin" tokenizer train --input "$work/data/pretrain.txt" --vocab-size 4096 --pattern han \
    --output "$work/tokenizer.json" --quiet
  "$bin" prepare --tokenizer "$work/tokenizer.json" --input "$work/data/pretrain.txt" --output "$work/shards" \
    --val-fraction 0.02 --quiet
  "$bin" pretrain --data "$work/shards" --out "$work/base" --depth 4 --context 256 --batch-size 8 \
    --steps "$psteps" --eval-every 0 --save-every 0 $threads 2>/dev/null
fi
head -n "$nval" "$work/data/eval_sft.jsonl" >"$work/val.jsonl"
awk -v k="$every" 'NR % k == 0' "$work/data/sft.jsonl" >"$work/train.jsonl"

# One SFT run; prints "padding_pct epoch_padding_pct text_tok_per_s final_val_loss".
sft() { # mode steps batch name
  local out=$work/sft-$4
  "$bin" sft --model "$work/base/model.safetensors" --data "$work/train.jsonl" --val "$work/val.jsonl" \
    --out "$out" --packing "$1" --steps "$2" --batch-size "$3" --seq-len "$len" --lr 2e-3 \
    --eval-every "$2" --save-every 0 $threads >"$out.log" 2>&1 || { cat "$out.log" >&2; exit 1; }
  sed -n 's/.*padding \([0-9.]*\)% of row tokens.*; \([0-9.]*\)% over a whole epoch.*/\1 \2/p' "$out.log" | tr '\n' ' '
  sed -n 's/.*tok\/s (\([0-9.]*\) of conversations).*/\1/p' "$out.log" | tr '\n' ' '
  sed -n 's/.*held out, first -> last evaluation:.*val_loss \([0-9.]* -> \)\{0,1\}\([0-9.]*\).*/\2/p' "$out.log"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
tokens() { awk -v s="$steps" -v p="$2" -v b="$1" -v t="$len" 'BEGIN { printf "%d", s * b * t * (1 - p / 100) }'; }

# The packed rows that hold as many conversation tokens as the unpacked batch (from the epoch padding of each,
# printed by one-step probes), for the held-out loss after the same conversation tokens.
read -r _ pad_ue _ _ <<<"$(sft off 1 "$batch" probe-off)"
read -r _ pad_pe _ _ <<<"$(sft on 1 "$batch" probe-on)"
batch_p=$(awk -v b="$batch" -v u="$pad_ue" -v p="$pad_pe" 'BEGIN { x = int(b * (100 - u) / (100 - p) + 0.5); print x < 1 ? 1 : x }')
say "$(wc -l <"$work/train.jsonl") conversations, rows of $len, $steps steps; $batch rows a step (both), packed at equal conversation tokens: $batch_p rows"
off_tps=() on_tps=() eq_tps=()
for r in $(seq 1 "$rounds"); do
  read -r pad_u pad_ue tps val_u <<<"$(sft off "$steps" "$batch" off)"
  off_tps+=("$tps")
  say "round $r  one per row, $batch rows: padding $pad_u% (epoch $pad_ue%), $tps conversation tok/s, held-out loss $val_u"
  read -r pad_p pad_pe tps val_pb <<<"$(sft on "$steps" "$batch" on)"
  on_tps+=("$tps")
  say "round $r  packed, $batch rows:      padding $pad_p% (epoch $pad_pe%), $tps conversation tok/s, held-out loss $val_pb"
  read -r pad_q _ tps val_p <<<"$(sft on "$steps" "$batch_p" on-eq)"
  eq_tps+=("$tps")
  say "round $r  packed, $batch_p rows:      padding $pad_q%, $tps conversation tok/s, held-out loss $val_p"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mu=$(median "${off_tps[@]}") mp=$(median "${on_tps[@]}") mq=$(median "${eq_tps[@]}")
say "padding share: one per row $pad_u% (whole epoch $pad_ue%), packed $pad_p% (whole epoch $pad_pe%)"
say "conversation tokens/s, median of $rounds alternating runs, $batch rows of $len a step: one per row $mu, packed $mp: $(ratio "$mp" "$mu")x"
say "at equal conversation tokens per step (packed $batch_p rows): packed $mq: $(ratio "$mq" "$mu")x"
say "held-out loss after $steps steps, $(tokens "$batch" "$pad_u") / $(tokens "$batch_p" "$pad_q") conversation tokens: one per row $val_u, packed $val_p"
[ "$keep" = 1 ] || rm -rf "$work"
