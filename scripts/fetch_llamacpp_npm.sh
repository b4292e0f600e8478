#!/usr/bin/env bash
# llama.cpp for the checks and benchmarks that run it beside jielong (issue 20; shared with the GGUF checks of
# issue 14): node-llama-cpp, pinned, with its prebuilt CPU binaries (no build, no download at run time), installed
# into build/npm-llamacpp (git-ignored, never into the repository). Idempotent; needs node + npm and the npm
# registry the first time. Prints the folder to use (its node_modules holds node-llama-cpp); non-zero if missing.
set -eu
cd "$(dirname "$0")/.."
dest=build/npm-llamacpp
want=node-llama-cpp@3.22.1
have() { grep -q "\"version\": \"${want##*@}\"" "$dest/node_modules/${want%@*}/package.json" 2>/dev/null; }
if ! have; then
  command -v npm >/dev/null && command -v node >/dev/null || { echo "fetch_llamacpp_npm: node and npm are needed" >&2; exit 1; }
  mkdir -p "$dest"
  echo "fetch_llamacpp_npm: installing $want into $dest" >&2
  npm install --prefix "$dest" --no-save --no-audit --no-fund --loglevel=error "$want" >&2
  have || { echo "fetch_llamacpp_npm: $want is still missing in $dest" >&2; exit 1; }
fi
echo "$PWD/$dest"
