#!/usr/bin/env bash
# Checks that llama.cpp chats with our GGUF export in our chat format: runs tests/test_llamacpp_chat.c (also in
# `make test`), where node-llama-cpp 3.22.1 (prebuilt CPU binaries, pinned, Node 20; build/npm-llamacpp from
# scripts/fetch_llamacpp_npm.sh, never the repo) reads the file's tokenizer.chat_template and its
# LlamaChatSession, greedy, must answer every turn of three conversations (no system prompt; multi-turn with a
# system prompt) exactly as `jielong chat --temperature 0` does, each greedy choice checked not to be a near-tie.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch_llamacpp_npm.sh >/dev/null
make -s build/jielong build/tests/test_llamacpp_chat
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
JL_BIN="$PWD/build/jielong" JL_TMP="$WORK" JL_ROOT="$PWD" build/tests/test_llamacpp_chat
