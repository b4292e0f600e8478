// Reference ids from HF tokenizers (npm native bindings) for tests/test_tokenizer_hf.c and the benchmark:
//   node scripts/hf_encode.js NODE_MODULES TOKENIZER_JSON TEXT_FILE OUT_IDS [OUT_DECODED]
// Reads the text as UTF-8 the way every caller of HF does (invalid bytes become U+FFFD), encodes it with
// encode(text, null, {addSpecialTokens: false}) and writes the ids as little-endian int32. With OUT_DECODED,
// also writes decode(ids) as UTF-8.
const fs = require("fs");
const [mods, tj, textPath, outPath, decPath] = process.argv.slice(2);
const { Tokenizer } = require(mods + "/tokenizers");
(async () => {
  const tok = Tokenizer.fromFile(tj);
  const text = fs.readFileSync(textPath, "utf8");
  const ids = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
  fs.writeFileSync(outPath, Buffer.from(new Int32Array(ids).buffer));
  if (decPath) fs.writeFileSync(decPath, await tok.decode(ids, false), "utf8");
})().catch((e) => { console.error(`hf_encode: ${tj}: ${e.message}`); process.exit(1); });
