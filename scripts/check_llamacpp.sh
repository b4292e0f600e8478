#!/usr/bin/env bash
# Checks our GGUF export against a real llama.cpp: node-llama-cpp (pinned, prebuilt CPU binaries) from
# scripts/fetch_llamacpp_npm.sh (build/npm-llamacpp, never into the repo; $NLC_DIR overrides). For llama (GQA, untied), llama (tied, q/k/v
# biases) and gpt2 models with a trained BPE tokenizer: llama.cpp's tokenization of a text must equal ours, and
# its greedy continuation of a prompt must equal jielong's (f32 and f16 files exactly; q8_0 reported).
set -euo pipefail
cd "$(dirname "$0")/.."
NLC_DIR=${NLC_DIR:-$(bash scripts/fetch_llamacpp_npm.sh)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
make -s build/jielong build/libjielong.a
cp scripts/llamacpp_greedy.mjs "$NLC_DIR/"
FLAGS="-std=c11 -D_GNU_SOURCE -O2 -march=native -fopenmp -Iinclude -Isrc $(pkg-config --cflags json-c)"
LIBS="$(pkg-config --libs openblas json-c libpcre2-8 2>/dev/null || echo -lopenblas -ljson-c -lpcre2-8) -lm -fopenmp"
cc $FLAGS scripts/llamacpp_ref.c build/libjielong.a $LIBS -o "$WORK/ref"
TEXT="《静夜思》李白 床前明月光，疑是地上霜。 The quick brown fox, 42 times!"
N=24
fail=0
for spec in "llama 0 0" "llama 1 1" "gpt2 1 0"; do
  set -- $spec
  ck="$WORK/m_$1_$2_$3.safetensors"
  "$WORK/ref" make "$ck" "$1" "$2" "$3" data/poems.jsonl
  ours_tok=$("$WORK/ref" encode "$ck" "$TEXT")
  prompt=$(echo "$ours_tok" | cut -d' ' -f1-12)
  ours=$("$WORK/ref" greedy "$ck" $N $prompt)
  for type in f32 f16 q8_0; do
    build/jielong export --model "$ck" --format gguf --type $type --out "$WORK/m.gguf" --quiet
    out=$(node "$NLC_DIR/llamacpp_greedy.mjs" "$WORK/m.gguf" $N "$TEXT" $prompt 2>"$WORK/err" | tail -n 2) \
      || { cat "$WORK/err"; fail=1; continue; }
    theirs_tok=$(echo "$out" | sed -n 1p); theirs=$(echo "$out" | sed -n 2p)
    same=0; read -ra a <<<"$ours"; read -ra b <<<"$theirs"
    for i in "${!a[@]}"; do [ "${a[$i]}" = "${b[$i]:-}" ] && same=$((same + 1)) || break; done
    tok_ok=$([ "$ours_tok" = "$theirs_tok" ] && echo same || echo DIFFERENT)
    echo "arch=$1 tied=$2 qkv_bias=$3 $type: tokenizer $tok_ok; greedy: first $same/$N tokens agree"
    if [ "$tok_ok" != same ]; then echo "  ours:      $ours_tok"; echo "  llama.cpp: $theirs_tok"; fail=1; fi
    if [ "$type" != q8_0 ] && [ "$same" -ne $N ]; then echo "  ours:      $ours"; echo "  llama.cpp: $theirs"; fail=1; fi
  done
done
exit $fail
