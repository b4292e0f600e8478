// Reference ids from HF tokenizers (npm native bindings) for tests/test_tokenizer_hf.c:
//   node scripts/hf_encode.js NODE_MODULES TOKENIZER_JSON (TEXT_FILE OUT_IDS OUT_DECODED)...
// Loads the tokenizer once; for each text, read as UTF-8 the way every caller of HF does (invalid bytes become
// U+FFFD), writes the ids of encode(text, null, {addSpecialTokens: false}) as little-endian int32 to OUT_IDS,
// decode(ids, false) as UTF-8 to OUT_DECODED, and the ids with addSpecialTokens: true to OUT_IDS.special.
const fs = require("fs");
const [mods, tj, ...rest] = process.argv.slice(2);
const { Tokenizer } = require(mods + "/tokenizers");
const put = (path, ids) => fs.writeFileSync(path, Buffer.from(new Int32Array(ids).buffer));
(async () => {
  const tok = Tokenizer.fromFile(tj);
  for (let k = 0; k + 2 < rest.length; k += 3) {
    const text = fs.readFileSync(rest[k], "utf8");
    const ids = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    put(rest[k + 1], ids);
    fs.writeFileSync(rest[k + 2], await tok.decode(ids, false), "utf8");
    put(rest[k + 1] + ".special", (await tok.encode(text, null, { addSpecialTokens: true })).getIds());
  }
})().catch((e) => { console.error(`hf_encode: ${tj}: ${e.message}`); process.exit(1); });
