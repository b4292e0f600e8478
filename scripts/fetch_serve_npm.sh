#!/usr/bin/env bash
# The real clients the server tests drive (issue 13), pinned, installed into build/npm-serve (git-ignored, never into
# the repository): the official OpenAI client and playwright-core (which drives Debian's chromium, headless).
# Idempotent (scripts/npm_fetch.sh); needs the npm registry the first time. Exits non-zero if anything is missing.
set -eu
cd "$(dirname "$0")/.."
bash scripts/npm_fetch.sh fetch_serve_npm build/npm-serve openai@6.9.1 playwright-core@1.65.1
