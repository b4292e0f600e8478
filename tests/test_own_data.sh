#!/usr/bin/env bash
# The README's "Your own data" walkthrough, run as written on a small bilingual corpus this script builds
# (the repository's English docs + Chinese poems from data/poems.jsonl, as separate files, English first — the
# order that used to leave a short pretraining run blind to the second half). Every step is checked, and the
# lesson of the walkthrough is asserted: the base model learns both languages (held-out loss falls for each).
# Run by tests/run.sh with JL_BIN (the jielong binary), JL_TMP (scratch) and JL_ROOT (the source tree).
set -u
JL=${JL_BIN:-build/jielong}
ROOT=${JL_ROOT:-.}
W=${JL_TMP:-$(mktemp -d)}/own
rm -rf "$W" && mkdir -p "$W/my"
cd "$W" || exit 1
pass=0
ok() { echo "[       OK ] own_data: $1"; pass=$((pass + 1)); }
die() { echo "[  FAILED  ] own_data: $1"; [ -f "$W/log" ] && tail -20 "$W/log"; exit 1; }
step() { local name=$1; shift; "$@" >"$W/log" 2>&1 || die "$name (exit $?): $*"; ok "$name"; }

# ---- the corpus: two files of different kinds (English prose, then Chinese poems) ----
cat "$ROOT/README.md" "$ROOT/docs/DESIGN.md" > my/english.txt
"$JL" data poems --input "$ROOT/data/poems.jsonl" --out "$W/poems" >"$W/log" 2>&1 || die "data poems"
head -c 400000 "$W/poems/pretrain.txt" > my/chinese.txt
# a few held-out documents of each language, for the per-language check at the end
tail -n 150 "$ROOT/README.md" > heldout_en.txt
head -n 400 "$W/poems/eval_pretrain.txt" > heldout_zh.txt
cat > my/chat.jsonl <<'EOF'
{"messages":[{"role":"user","content":"What does jielong prepare do?"},{"role":"assistant","content":"It turns text into token shards for pretraining."}]}
{"messages":[{"role":"user","content":"What is a LoRA adapter?"},{"role":"assistant","content":"A small low-rank update trained on top of frozen weights."}]}
{"messages":[{"role":"user","content":"《静夜思》是谁写的？"},{"role":"assistant","content":"李白。"}]}
{"messages":[{"role":"user","content":"写一句五言诗。"},{"role":"assistant","content":"床前明月光。"}]}
{"messages":[{"role":"user","content":"How do I resume a run?"},{"role":"assistant","content":"Pass --resume with the run's checkpoint.safetensors."}]}
{"messages":[{"role":"user","content":"你好"},{"role":"assistant","content":"你好！我是一个小模型。"}]}
EOF
for i in 1 2 3 4; do sed -n "$i,6p" my/chat.jsonl; done >> my/chat.jsonl

# ---- the walkthrough (README "Your own data: a first run"), step by step ----
step "tokenizer train" "$JL" tokenizer train --input my/english.txt my/chinese.txt --vocab-size 1024 --pattern han \
    --output my/tokenizer.json --quiet
step "prepare" "$JL" prepare --tokenizer my/tokenizer.json --input my/english.txt my/chinese.txt --output my/shards \
    --val-fraction 0.05 --quiet
step "pretrain" "$JL" pretrain --data my/shards --out my/base --depth 2 --context 128 --steps 120 --lr 3e-3 \
    --eval-every 40 --threads 2
grep -q "shuffled windows over the whole corpus" "$W/log" || die "pretrain does not state its coverage"
ok "pretrain states its coverage"
step "eval (held-out shards)" "$JL" eval --model my/base/model.safetensors --data my/shards
step "eval (text, per language)" "$JL" eval --model my/base/model.safetensors --data heldout_en.txt heldout_zh.txt --json
ppl_en=$(sed -n 's/.*"file":"heldout_en.txt".*"ppl":\([0-9.e+]*\).*/\1/p' "$W/log")
ppl_zh=$(sed -n 's/.*"file":"heldout_zh.txt".*"ppl":\([0-9.e+]*\).*/\1/p' "$W/log")
[ -n "$ppl_en" ] && [ -n "$ppl_zh" ] || die "no per-language perplexity in: $(cat "$W/log")"
# A model that never saw the second file scores it near the vocabulary size (1024) or worse; one that read both
# halves is far below it on each.
awk -v e="$ppl_en" -v z="$ppl_zh" 'BEGIN { exit !(e < 400 && z < 400) }' ||
    die "held-out perplexity English $ppl_en, Chinese $ppl_zh: one language was not learnt"
ok "both languages learnt (perplexity en $ppl_en, zh $ppl_zh)"
step "sft" "$JL" sft --model my/base/model.safetensors --data my/chat.jsonl --out my/sft --steps 30 --lr 2e-3 \
    --batch-size 4 --seq-len 128 --threads 2
step "generate" "$JL" generate --model my/base/model.safetensors --prompt "床前" --max-tokens 8 --temperature 0
step "chat" sh -c "printf 'What does jielong prepare do?\n' | '$JL' chat --model my/sft/model.safetensors --temperature 0 --max-tokens 16"
step "plot" "$JL" plot --metrics my/base/metrics.jsonl --y loss,val_loss --out my/base/loss.svg
grep -q 'data-name="val_loss"' my/base/loss.svg || die "the plot has no held-out curve"
ok "plot has the held-out curve"
echo "own_data: $pass steps passed"
