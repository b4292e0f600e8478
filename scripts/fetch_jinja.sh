#!/usr/bin/env bash
# Installs the reference Jinja renderer of the chat template tests into build/npm-jinja/ (git-ignored):
#   @huggingface/jinja@0.5.11  (the renderer transformers.js uses)
# The model families' tokenizer_config.json files come from scripts/fetch_vocab.sh (build/vocab/hf/FAMILY/).
# Idempotent; needs node + npm and the npm registry the first time. Exits non-zero if it is missing after.
set -eu
cd "$(dirname "$0")/.."
dest=build/npm-jinja
pkg="$dest/node_modules/@huggingface/jinja/package.json"
have() { [ -s "$pkg" ] && grep -q '"version": "0.5.11"' "$pkg"; }
have && exit 0
command -v npm >/dev/null && command -v node >/dev/null || { echo "fetch_jinja: node and npm are needed" >&2; exit 1; }
mkdir -p "$dest"
echo "fetch_jinja: installing @huggingface/jinja@0.5.11 into $dest" >&2
npm install --prefix "$dest" --no-save --no-audit --no-fund --loglevel=error @huggingface/jinja@0.5.11 >&2
have || { echo "fetch_jinja: @huggingface/jinja is still missing in $dest" >&2; exit 1; }
