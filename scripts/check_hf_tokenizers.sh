#!/usr/bin/env bash
# Checks tokenizer.json compatibility with HF tokenizers (the Rust library, through its npm native bindings):
#  1. ours → HF: tokenizer.json files written by jielong (a trained one, and GPT-2 / cl100k imports when
#     scripts/fetch_vocab.sh has the vocabularies) load in HF and give the same ids on 2 MB of mixed text with
#     special tokens in it.
#  2. HF → ours: a GPT-2 tokenizer.json written by HF tokenizers loads in jielong and gives the same ids.
# Prints one line per check and exits non-zero on any difference.
set -eu
cd "$(dirname "$0")/.."
make -s build/jielong
mods=$(bash scripts/hf_tokenizers.sh)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
J=build/jielong
$J tokenizer synth --seed 11 --bytes 2000000 --output "$work/text.txt"
printf '<|user|>hi there<|end|><|assistant|>你好<|end|>\n' >> "$work/text.txt"
$J tokenizer train --input "$work/text.txt" --vocab-size 8000 --output "$work/trained.json" --quiet
tokenizers=("$work/trained.json")
if bash scripts/fetch_vocab.sh; then
  $J tokenizer import --encoder build/vocab/encoder.json --merges build/vocab/vocab.bpe --output "$work/gpt2.json"
  $J tokenizer import --tiktoken build/vocab/cl100k_base.tiktoken --output "$work/cl100k.json"
  tokenizers+=("$work/gpt2.json" "$work/cl100k.json")
  # an HF-written GPT-2 tokenizer.json (merges in HF's own format)
  node -e '
    const { Tokenizer, BPE, byteLevelPreTokenizer } = require(process.argv[1] + "/tokenizers");
    (async () => {
      const model = await BPE.fromFile(process.argv[2], process.argv[3]);
      const tok = new Tokenizer(model);
      tok.setPreTokenizer(byteLevelPreTokenizer(false, true));
      tok.addSpecialTokens(["<|endoftext|>"]);
      tok.save(process.argv[4]);
    })();' "$mods" build/vocab/encoder.json build/vocab/vocab.bpe "$work/hf_gpt2.json"
  tokenizers+=("$work/hf_gpt2.json")
fi
status=0
for tj in "${tokenizers[@]}"; do
  $J tokenizer encode --tokenizer "$tj" --allow-special --input "$work/text.txt" --output "$work/ours.ids"
  node -e '
    const fs = require("fs"), { Tokenizer } = require(process.argv[1] + "/tokenizers");
    (async () => {
      const tok = Tokenizer.fromFile(process.argv[2]);
      const text = fs.readFileSync(process.argv[3], "utf8");
      const hf = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
      const ours = fs.readFileSync(process.argv[4], "utf8").trim().split(" ").map(Number);
      let i = 0;
      while (i < hf.length && hf[i] === ours[i]) i++;
      const same = i === hf.length && hf.length === ours.length;
      console.log(`${require("path").basename(process.argv[2])}: ${same ? "IDENTICAL" : "DIFFERENT at " + i} ` +
                  `(${hf.length} HF ids, ${ours.length} ours)`);
      process.exit(same ? 0 : 1);
    })();' "$mods" "$tj" "$work/text.txt" "$work/ours.ids" || status=1
done
exit $status
