#!/usr/bin/env bash
# The real clients the server tests drive (issue 13), pinned, installed into build/npm-serve (git-ignored, never into
# the repository): the official OpenAI client and playwright-core (which drives Debian's chromium, headless).
# Idempotent; needs node + npm and the npm registry the first time. Exits non-zero if anything is missing after.
set -eu
cd "$(dirname "$0")/.."
dest=build/npm-serve
want=(openai@6.9.1 playwright-core@1.65.1)
have() {
  for p in "${want[@]}"; do
    name=${p%@*} version=${p##*@}
    grep -q "\"version\": \"$version\"" "$dest/node_modules/$name/package.json" 2>/dev/null || return 1
  done
}
have && exit 0
command -v npm >/dev/null && command -v node >/dev/null || { echo "fetch_serve_npm: node and npm are needed" >&2; exit 1; }
mkdir -p "$dest"
echo "fetch_serve_npm: installing ${want[*]} into $dest" >&2
npm install --prefix "$dest" --no-save --no-audit --no-fund --loglevel=error "${want[@]}" >&2
have || { echo "fetch_serve_npm: the packages are still missing in $dest" >&2; exit 1; }
