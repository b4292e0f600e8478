#!/usr/bin/env bash
# Installs the reference GGUF reader of tests/test_gguf_foreign.c into build/npm-gguf/ (git-ignored):
#   @huggingface/gguf@0.4.6  (Hugging Face's JavaScript GGUF reader)
# Idempotent (scripts/npm_fetch.sh); needs the npm registry the first time. Exits non-zero if it is missing after.
set -eu
cd "$(dirname "$0")/.."
bash scripts/npm_fetch.sh fetch_gguf_js build/npm-gguf @huggingface/gguf@0.4.6
