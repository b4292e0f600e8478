#!/usr/bin/env bash
# make demo: the default pipeline on the bundled poems. Usage: scripts/demo.sh path/to/jielong [out-dir]
set -eu
bin=${1:-build/jielong}
out=${2:-out/demo}
mkdir -p "$out"
echo "== 1. derive the datasets from the bundled poems (data/poems.jsonl)"
"$bin" data poems --input data/poems.jsonl --out "$out/data"
echo "== 2. train a byte-level BPE tokenizer on the pretraining text"
"$bin" tokenizer train --input "$out/data/pretrain.txt" --vocab-size 4096 --output "$out/tokenizer.json"
echo "== 3. tokenize into shards with a held-out split"
"$bin" prepare --tokenizer "$out/tokenizer.json" --input "$out/data/pretrain.txt" --output "$out/shards" \
      --val-fraction 0.02
echo "== 4. pretrain a small Transformer (a few minutes on 2 cores)"
"$bin" pretrain --data "$out/shards" --out "$out/base" --depth 4 --context 128 --batch-size 16 --steps 800 \
      --lr 3e-3 --eval-every 100 --sample-every 200 --sample-tokens 48 --sample-prompt "《春晓》"
"$bin" plot --metrics "$out/base/metrics.jsonl" --y loss,val_loss --smooth 20 --title "pretraining" \
      --out "$out/base/loss.svg"
echo "== done: model $out/base/model.safetensors, loss curve $out/base/loss.svg"
