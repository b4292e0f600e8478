#!/usr/bin/env bash
# The one way the repository installs pinned npm packages (the fetch_*.sh scripts call it):
#   bash scripts/npm_fetch.sh WHO DEST name@version...
# installs the packages into DEST/node_modules (DEST under build/, git-ignored, never the repository) unless every
# one is there at its pinned version already. Idempotent; needs node + npm and the npm registry the first time.
# Exits non-zero (naming WHO, the calling script) when node/npm are missing or a package is still missing after.
set -eu
who=$1 dest=$2
shift 2
want=("$@")
have() {
  for p in "${want[@]}"; do
    name=${p%@*} version=${p##*@}
    grep -q "\"version\": \"$version\"" "$dest/node_modules/$name/package.json" 2>/dev/null || return 1
  done
}
have && exit 0
command -v npm >/dev/null && command -v node >/dev/null || { echo "$who: node and npm are needed" >&2; exit 1; }
mkdir -p "$dest"
echo "$who: installing ${want[*]} into $dest" >&2
npm install --prefix "$dest" --no-save --no-audit --no-fund --loglevel=error "${want[@]}" >&2
have || { echo "$who: ${want[*]}: still missing in $dest" >&2; exit 1; }
