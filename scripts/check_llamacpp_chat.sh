#!/usr/bin/env bash
# Checks that llama.cpp chats with our GGUF export in our chat format: node-llama-cpp (prebuilt CPU binaries,
# pinned 3.22.1, which runs on Node 20, installed by scripts/fetch_llamacpp_npm.sh into build/npm-llamacpp, never
# into the repo; $NLC_DIR overrides) reads the file's tokenizer.chat_template (our format as Jinja) and its LlamaChatSession, greedy,
# must answer every turn of a conversation exactly as `jielong chat --temperature 0` does. Models: a small
# random llama model with a trained BPE tokenizer (one turn; the answer runs to --max-tokens: every token
# checked), and the same model fine-tuned to answer and stop (three turns; the end-of-turn token checked). f32 GGUF. Both sides decode invalid
# UTF-8 (which a random model emits) to U+FFFD, llama.cpp one per sequence and jielong one per byte: runs of
# U+FFFD are compared as one. LlamaChatSession gets the same system prompt as `jielong chat --system`.
set -euo pipefail
cd "$(dirname "$0")/.."
NLC_DIR=${NLC_DIR:-$(bash scripts/fetch_llamacpp_npm.sh)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
make -s build/jielong build/libjielong.a
cp scripts/llamacpp_chat.mjs "$NLC_DIR/"
FLAGS="-std=c11 -D_GNU_SOURCE -O2 -march=native -fopenmp -Iinclude -Isrc $(pkg-config --cflags json-c)"
LIBS="$(pkg-config --libs openblas json-c libpcre2-8 icu-uc sqlite3 2>/dev/null) -ldnnl -lm -fopenmp"  # as the Makefile links (oneDNN: issue 20)
cc $FLAGS scripts/llamacpp_ref.c build/libjielong.a $LIBS -o "$WORK/ref"
"$WORK/ref" make "$WORK/random.safetensors" llama 0 0 data/poems.jsonl
# a fine-tuned copy that answers "n=<length>" and stops
python_free_task() { for w in a bb ccc dddd eeeee ab abc abcd bcd cd; do
  for k in 1 2 3 4 5 6 7 8; do printf '{"messages":[{"role":"user","content":"len %s%s"},{"role":"assistant","content":"n=%d"}]}\n' \
    "$w" "$(printf '%*s' $((k % 3)) '' | tr ' ' 'x')" $(( ${#w} + k % 3 )); done; done; }
python_free_task > "$WORK/task.jsonl"
build/jielong sft --model "$WORK/random.safetensors" --data "$WORK/task.jsonl" --out "$WORK/sft" --method full \
  --steps 200 --batch-size 16 --seq-len 64 --lr 3e-3 --eval-every 100 --seed 5 >/dev/null 2>&1
system="你是接龙。"
fail=0
for model in "$WORK/random.safetensors" "$WORK/sft/model.safetensors"; do
  name=$(basename "$(dirname "$model")")/$(basename "$model")
  # the random model's answers hold invalid UTF-8, which each side keeps differently in the history: one turn
  if [ "$model" = "$WORK/random.safetensors" ]; then turns=("len abc"); else turns=("len abc" "len xx" "床前明月光"); fi
  build/jielong export --model "$model" --format gguf --type f32 --out "$WORK/m.gguf" --quiet
  ours=$(for t in "${turns[@]}"; do printf '{"content":%s}\n' "$(node -e 'console.log(JSON.stringify(process.argv[1]))' "$t")"; done |
         build/jielong chat --model "$model" --temperature 0 --max-tokens 16 --jsonl --system "$system" |
         node -e 'const l=require("fs").readFileSync(0,"utf8").trim().split("\n"); for (const x of l) console.log(JSON.stringify(JSON.parse(x).content))' |
         sed 's/\(�\)\{2,\}/�/g')
  theirs=$(node "$NLC_DIR/llamacpp_chat.mjs" "$WORK/m.gguf" 16 "$system" "${turns[@]}" 2>"$WORK/err" | sed 's/\(�\)\{2,\}/�/g') ||
    { cat "$WORK/err"; fail=1; continue; }
  same=0; i=0
  while IFS= read -r a && IFS= read -r b <&3; do i=$((i + 1)); [ "$a" = "$b" ] && same=$((same + 1)); done <<<"$ours" 3<<<"$theirs"
  echo "$name: $(cat "$WORK/err" | tr '\n' ' ')— $same/${#turns[@]} answers equal to jielong chat: $(echo "$ours" | tr '\n' ' ')"
  if [ "$same" -ne ${#turns[@]} ]; then echo "  jielong chat: $ours" | head -5; echo "  llama.cpp:    $theirs" | head -5; fail=1; fi
done
exit $fail
