#!/usr/bin/env bash
# llama.cpp for the checks and benchmarks that run it beside jielong (tests/test_gguf_llamacpp.c, the chat check,
# bench/bench_llamacpp.sh): node-llama-cpp, pinned, with its prebuilt linux-x64 CPU binaries
# (@node-llama-cpp/linux-x64, an optional dependency npm installs with it; no build, no download at run time),
# installed into build/npm-llamacpp (git-ignored, never into the repository). Idempotent (scripts/npm_fetch.sh);
# needs the npm registry the first time. Prints the folder to use (its node_modules holds node-llama-cpp).
set -eu
cd "$(dirname "$0")/.."
bash scripts/npm_fetch.sh fetch_llamacpp_npm build/npm-llamacpp node-llama-cpp@3.22.1
echo "$PWD/build/npm-llamacpp"
