#!/usr/bin/env bash
# make demo: the whole recipe on the bundled poems (jielong pipeline), then where to look.
# Usage: scripts/demo.sh path/to/jielong [out-dir]
set -eu
bin=${1:-build/jielong}
out=${2:-out/demo}
"$bin" pipeline --out "$out"
echo
echo "Report: $out/report.md   Commands it ran: $out/commands.sh"
echo "Chat:   $bin chat --model $out/sft/model.safetensors"
