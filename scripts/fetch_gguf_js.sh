#!/usr/bin/env bash
# Installs the reference GGUF reader of tests/test_gguf_foreign.c into build/npm-gguf/ (git-ignored):
#   @huggingface/gguf@0.4.6  (Hugging Face's JavaScript GGUF reader)
# Idempotent; needs node + npm and the npm registry the first time. Exits non-zero if it is missing after.
set -eu
cd "$(dirname "$0")/.."
dest=build/npm-gguf
pkg="$dest/node_modules/@huggingface/gguf/package.json"
have() { [ -s "$pkg" ] && grep -q '"version": "0.4.6"' "$pkg"; }
have && exit 0
command -v npm >/dev/null && command -v node >/dev/null || { echo "fetch_gguf_js: node and npm are needed" >&2; exit 1; }
mkdir -p "$dest"
echo "fetch_gguf_js: installing @huggingface/gguf@0.4.6 into $dest" >&2
npm install --prefix "$dest" --no-save --no-audit --no-fund --loglevel=error @huggingface/gguf@0.4.6 >&2
have || { echo "fetch_gguf_js: @huggingface/gguf is still missing in $dest" >&2; exit 1; }
