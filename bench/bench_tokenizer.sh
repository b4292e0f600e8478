#!/usr/bin/env bash
# Tokenizer speed, jielong beside HF tokenizers (Rust, npm native bindings) in the same run, on the same text
# (JL_BENCH_MB MB, default 16, of synthetic mixed English/Chinese/code) and the same tokenizer.json files:
#   training: byte-level BPE to 30000 tokens with GPT-2's pre-tokenizer regex (HF's ByteLevel default)
#   encoding: the tokenizer we trained, and cl100k (when scripts/fetch_vocab.sh has it), loaded by both;
#             one call on the whole text (HF: encode; one thread) and on all threads (HF: encodeBatch over the
#             text's documents — paragraphs split at blank lines, as HF users batch a corpus; jielong: one encode
#             call, which splits and uses every OpenMP thread); jielong with its hand-written pre-tokenizer scanner
#             and with PCRE2 ("pcre2" lines), and each tokenizer.json's load time.
# Then runs scripts/check_hf_tokenizers.sh (same ids from our tokenizer.json files in HF, and the reverse).
# Usage: bench/bench_tokenizer.sh [BUILD_DIR]
#   JL_BENCH_FAMILIES_ONLY=1: only the six families' encode speed beside HF with its same-run ratios (~1-2 min)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
make -s "$build/jielong" "$build/bench/bench_tokenizer"
mods=$(bash scripts/hf_tokenizers.sh)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mb=${JL_BENCH_MB:-16}
echo "== tokenizer benchmark: $(nproc) cores, OMP_NUM_THREADS=${OMP_NUM_THREADS:-all}; $(uptime)"
if [ -z "${JL_BENCH_FAMILIES_ONLY:-}" ]; then
"$build/jielong" tokenizer synth --seed 1 --bytes $((mb << 20)) --output "$work/text.txt"
encode=(--encode "$work/ours.json")
jsons=("$work/ours.json")
if bash scripts/fetch_vocab.sh 2>/dev/null; then
  "$build/jielong" tokenizer import --tiktoken build/vocab/cl100k_base.tiktoken --output "$work/cl100k.json"
  encode+=(--encode "$work/cl100k.json")
  jsons+=("$work/cl100k.json")
fi
echo "-- jielong"
"$build/bench/bench_tokenizer" --text "$work/text.txt" --vocab 30000 --pattern gpt2 --save "$work/ours.json" \
  "${encode[@]}" | grep -v '^encode trained'   # "trained" is timed again as ours.json
echo "-- HF tokenizers $(node -p "require('$mods/tokenizers/package.json').version")"
node -e '
const fs = require("fs"), path = require("path");
const { Tokenizer, BPE, byteLevelPreTokenizer } = require(process.argv[1] + "/tokenizers");
const [textPath, ...jsons] = process.argv.slice(2);
(async () => {
  const text = fs.readFileSync(textPath, "utf8"), mb = Buffer.byteLength(text) / 1e6;
  let t0 = process.hrtime.bigint();
  const tr = new Tokenizer(BPE.empty());
  tr.setPreTokenizer(byteLevelPreTokenizer(false, true));
  tr.train([textPath]);
  const trainS = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`train gpt2 vocab ${tr.getVocabSize()}: ${trainS.toFixed(2)} s`);
  const pieces = text.split(/(?<=\n\n)/);  /* documents: paragraphs, each with its blank line */
  for (const j of jsons) {
    const tok = Tokenizer.fromFile(j), name = path.basename(j);
    const best = async (f) => { let b = 1e9, n = 0, spent = 0; for (let r = 0; r < 3 && spent < 5; r++) {
      const t = process.hrtime.bigint(); n = await f(); const s = Number(process.hrtime.bigint() - t) / 1e9;
      b = Math.min(b, s); spent += s; } return [b, n]; };  /* best of 3, or of fewer runs past 5 s */
    const [t1, n1] = await best(async () => (await tok.encode(text, null, { addSpecialTokens: false })).getLength());
    const [tn, nn] = await best(async () => (await tok.encodeBatch(pieces, { addSpecialTokens: false }))
                                          .reduce((s, e) => s + e.getLength(), 0));
    console.log(`encode ${name} 1 call: ${(mb / t1).toFixed(1)} MB/s (${n1} tokens, ${t1.toFixed(3)} s)`);
    console.log(`encode ${name} batch: ${(mb / tn).toFixed(1)} MB/s (${nn} tokens, ${tn.toFixed(3)} s; ` +
                `encodeBatch of ${pieces.length} documents)`);
  }
})();' "$mods" "$work/text.txt" "${jsons[@]}" 2>/dev/null | grep -v '^[[:space:]]*$'  # HF training prints blank lines
fi
# The six model families' real tokenizer.json files (scripts/fetch_vocab.sh), JL_BENCH_FAMILY_MB MB (default 4) of
# --world text (Chinese, Japanese, Korean, English, code, emoji, accents). HF is called as its users call it on
# a corpus: encodeBatch over its documents (paragraphs, all threads); jielong: one encode call (all threads).
if bash scripts/fetch_vocab.sh 2>/dev/null; then
  fmb=${JL_BENCH_FAMILY_MB:-4}
  "$build/jielong" tokenizer synth --world --seed 2 --bytes $((fmb << 20)) --output "$work/world.txt"
  fams=()
  for f in ${JL_BENCH_FAMILIES:-llama3 qwen3 deepseek_v3 gpt4o gemma3 llama2}; do  # JL_BENCH_FAMILIES: a subset
    ln -sf "$PWD/build/vocab/hf/$f/tokenizer.json" "$work/$f.json"; fams+=("$work/$f.json")
  done
  echo "-- six model families, $fmb MB of mixed text: jielong (bench_tokenizer --encode, all threads)"
  "$build/bench/bench_tokenizer" --text "$work/world.txt" --vocab 0 $(printf -- '--encode %s ' "${fams[@]}") |
    tee "$work/fam_ours.txt"
  echo "-- the same with HF tokenizers (encodeBatch over the documents: paragraphs split at blank lines)"
  node -e '
  const fs = require("fs"), path = require("path");
  const { Tokenizer } = require(process.argv[1] + "/tokenizers");
  const [textPath, ...jsons] = process.argv.slice(2);
  (async () => {
    const text = fs.readFileSync(textPath, "utf8"), mb = Buffer.byteLength(text) / 1e6;
    const pieces = text.split(/(?<=\n\n)/);  /* documents: paragraphs, each with its blank line */
    for (const j of jsons) {
      const tok = Tokenizer.fromFile(j), name = path.basename(j);
      let best = 1e9, n = 0;
      for (let r = 0; r < 2; r++) {
        const t = process.hrtime.bigint();
        n = (await tok.encodeBatch(pieces, { addSpecialTokens: false })).reduce((s, e) => s + e.getLength(), 0);
        best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
      }
      console.log(`encode ${name} batch: ${(mb / best).toFixed(1)} MB/s (${n} tokens, ${best.toFixed(3)} s; ` +
                  `encodeBatch of ${pieces.length} documents)`);
    }
  })();' "$mods" "$work/world.txt" "${fams[@]}" | tee "$work/fam_hf.txt"
  echo "-- jielong / HF (same run, same text; ours: one encode call on all threads; HF: encodeBatch over the documents, all threads)"
  awk '/threads: / && !/ pcre2 / { split($0, a, " "); ours[a[2]] = a[5] } /batch: / { split($0, a, " "); hf[a[2]] = a[4] }
       END { for (k in hf) if (k in ours) printf "%s: %.1fx (%s vs %s MB/s)\n", k, ours[k] / hf[k], ours[k], hf[k] }' \
    "$work/fam_ours.txt" "$work/fam_hf.txt" | sort
fi
[ -n "${JL_BENCH_FAMILIES_ONLY:-}" ] && exit 0
echo "-- tokenizer.json compatibility with HF tokenizers"
bash scripts/check_hf_tokenizers.sh
