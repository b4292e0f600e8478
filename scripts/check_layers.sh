#!/usr/bin/env bash
# check_layers.sh: the folders of src/ form layers; a file may include headers of its own folder, of a folder
# below it, and the public headers (include/jielong/*.h), never of a folder above it. Fails (exit 1) naming every
# include that goes upwards; prints the order it checked against. Run by `make test` (tests/test_layers.sh).
#
# The order, lowest first (written once, here). src/io holds the byte containers (fileio, safetensors, JSON helpers)
# and sits below model; src/format holds the model formats (checkpoint, GGUF read/load/write, foreign GGUF, HF
# import/export, llm.c), which build or read a jl_model, so it sits above model, infer, tokenizer, template and data
# (docs/DESIGN.md, Layering). src/dist (MPI data parallelism) needs only core and sits right below train, its user.
set -u
cd "$(dirname "$0")/.."
ORDER=(core io model infer tokenizer template data format dist train eval rag tools serve cli)

rank_of() {
  local i
  for i in "${!ORDER[@]}"; do [ "${ORDER[$i]}" = "$1" ] && { echo "$i"; return; }; done
  echo -1
}

bad=0
for dir in src/*/; do
  from=$(basename "$dir")
  rf=$(rank_of "$from")
  if [ "$rf" -lt 0 ]; then
    echo "check_layers: src/$from is not in the declared order (${ORDER[*]}): add it in scripts/check_layers.sh"
    bad=1
    continue
  fi
  while IFS=: read -r file line inc; do
    to=${inc%%/*}
    rt=$(rank_of "$to")
    [ "$rt" -lt 0 ] && continue # a public header (jielong/...) or a system one
    if [ "$rt" -gt "$rf" ]; then
      echo "check_layers: $file:$line includes \"$inc\": $from may not depend on $to (above it)"
      bad=1
    fi
  done < <(grep -Hn '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$dir"*.[ch] 2>/dev/null |
           sed -E 's/^([^:]*):([0-9]+):.*#[[:space:]]*include[[:space:]]*"([^"]*)".*/\1:\2:\3/')
done
if [ "$bad" -ne 0 ]; then
  echo "check_layers: FAILED (order, lowest first: ${ORDER[*]})"
  exit 1
fi
echo "check_layers: ok (order, lowest first: ${ORDER[*]})"
