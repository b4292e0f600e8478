#!/usr/bin/env bash
# Installs the HF tokenizers npm package (Rust, native bindings) into build/hf/ once; prints its node_modules path.
# Used by scripts/check_hf_tokenizers.sh and bench/bench_tokenizer.sh; nothing of it is committed.
set -eu
cd "$(dirname "$0")/.."
dest=build/hf
if [ ! -f "$dest/node_modules/tokenizers/package.json" ]; then
  mkdir -p "$dest"
  npm install --prefix "$dest" --no-save --no-audit --no-fund --loglevel=error tokenizers@0.23.2 >&2
fi
echo "$PWD/$dest/node_modules"
