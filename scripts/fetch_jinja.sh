#!/usr/bin/env bash
# Installs the reference Jinja renderer of the chat template tests into build/npm-jinja/ (git-ignored):
#   @huggingface/jinja@0.5.11  (the renderer transformers.js uses)
# The model families' tokenizer_config.json files come from scripts/fetch_vocab.sh (build/vocab/hf/FAMILY/).
# Idempotent (scripts/npm_fetch.sh); needs the npm registry the first time. Exits non-zero if it is missing after.
set -eu
cd "$(dirname "$0")/.."
bash scripts/npm_fetch.sh fetch_jinja build/npm-jinja @huggingface/jinja@0.5.11
