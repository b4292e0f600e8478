// Reference reading of a GGUF file by @huggingface/gguf (npm, build/npm-gguf from scripts/fetch_gguf_js.sh) for
// tests/test_gguf_foreign.c:  node scripts/gguf_ref.mjs PATH_TO/@huggingface/gguf/dist/index.mjs FILE.gguf OUT.json
// Writes {"kv": {key: value, ...}, "tensors": [{name, shape, dtype, offset}, ...]}: the header's metadata as the
// package reads it (its own "version", "tensor_count", "kv_count" included; 64-bit integers as numbers).
import fs from "fs";
const [mod, file, out] = process.argv.slice(2);
try {
  const { gguf } = await import(mod);
  const { metadata, tensorInfos } = await gguf(file, { allowLocalFile: true });
  const plain = (v) => (typeof v === "bigint" ? Number(v) : Array.isArray(v) ? v.map(plain) : v);
  const kv = {};
  for (const [k, v] of Object.entries(metadata)) kv[k] = plain(v);
  const tensors = tensorInfos.map((t) => ({ name: t.name, shape: t.shape.map(Number), dtype: t.dtype,
                                            offset: Number(t.offset) }));
  fs.writeFileSync(out, JSON.stringify({ kv, tensors }));
} catch (e) {
  console.error(`gguf_ref: ${file}: ${e.message}`);
  process.exit(1);
}
