#!/usr/bin/env bash
# Rebuilds data/ (the bundled poem corpus) from the npm package `chinese-poetry` (MIT).
#
#   bash scripts/build_data.sh [OUT_DIR]        (default OUT_DIR: data)
#
# Steps: install the package into a temporary folder (never into the repository), keep the Tang poems of a
# regular form (五言/七言 绝句/律诗: 4 or 8 lines of 5 or 7 Han characters, punctuated ，。，。…), convert them
# to simplified Chinese with OpenCC (t2s), drop duplicates, take at most PER_FORM_CAP poems of each form (the
# ones with the smallest hash, so the subset is deterministic), split ~5% off as held-out by a hash of
# title+author, and write OUT_DIR/poems.jsonl, OUT_DIR/LICENSE-chinese-poetry and OUT_DIR/README.md.
# Needs: node + npm, opencc (Debian package `opencc`). Same package version → byte-identical output.
set -euo pipefail

PKG_VERSION=${CHINESE_POETRY_VERSION:-2.0.1}
PER_FORM_CAP=${PER_FORM_CAP:-5000}
HELDOUT_PERCENT=${HELDOUT_PERCENT:-5}
MAX_BYTES=$((5 * 1024 * 1024))

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/data}
for tool in node npm opencc; do
  command -v "$tool" >/dev/null || { echo "build_data: '$tool' is not installed" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "build_data: installing chinese-poetry@$PKG_VERSION into $work" >&2
npm install --prefix "$work" --no-save --ignore-scripts --no-audit --no-fund --loglevel=error \
  "chinese-poetry@$PKG_VERSION" >&2
pkg="$work/node_modules/chinese-poetry"
src="$pkg/dist/quantangshi"
[ -d "$src" ] || { echo "build_data: $src not found (package layout changed?)" >&2; exit 1; }

# 1. Select regular-form poems (traditional characters) and write every text field on its own line,
#    so one OpenCC run converts them all: title, author, then the lines.
node - "$src" "$work/selected.json" "$work/fields.txt" <<'EOF'
const fs = require("fs");
const [src, selectedPath, fieldsPath] = process.argv.slice(2);
const files = fs.readdirSync(src).filter(f => /^poet\.tang\.\d+\.json$/.test(f))
  .sort((a, b) => Number(a.split(".")[2]) - Number(b.split(".")[2]));
const han = /^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+$/u;
// A regular form: every 句 is 5 (or every one 7) Han characters, 4 or 8 of them, ending ，。，。…
function splitRegular(paragraphs) {
  const parts = paragraphs.join("").split(/([，。？！；、：])/);
  if (parts[parts.length - 1] !== "") return null;
  const lines = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const expected = lines.length % 2 === 0 ? "，" : "。";
    // 囗 stands for an illegible character in the source: such a poem is incomplete.
    if (parts[i + 1] !== expected || !han.test(parts[i]) || parts[i].includes("囗")) return null;
    lines.push(parts[i]);
  }
  const len = lines.length ? [...lines[0]].length : 0;
  if ((lines.length !== 4 && lines.length !== 8) || (len !== 5 && len !== 7)) return null;
  return lines.every(l => [...l].length === len) ? lines : null;
}
const selected = [], fields = [];
let total = 0;
for (const f of files) {
  for (const p of JSON.parse(fs.readFileSync(`${src}/${f}`, "utf8"))) {
    total++;
    const lines = Array.isArray(p.paragraphs) ? splitRegular(p.paragraphs) : null;
    const title = String(p.title || "").replace(/\s+/g, " ").trim();
    const author = String(p.author || "").replace(/\s+/g, " ").trim();
    if (!lines || !title || !author) continue;
    selected.push({ nlines: lines.length });
    fields.push(title, author, ...lines);
  }
}
fs.writeFileSync(selectedPath, JSON.stringify({ total, selected }));
fs.writeFileSync(fieldsPath, fields.join("\n") + "\n");
EOF

# 2. Traditional → simplified.
opencc -c t2s.json -i "$work/fields.txt" -o "$work/fields.s.txt"

# 3. Re-check, dedup, cap per form, split, write.
mkdir -p "$out"
node - "$work/selected.json" "$work/fields.s.txt" "$out/poems.jsonl" "$work/stats.json" \
     "$PER_FORM_CAP" "$HELDOUT_PERCENT" <<'EOF'
const fs = require("fs");
const crypto = require("crypto");
const [selectedPath, fieldsPath, outPath, statsPath, capArg, heldArg] = process.argv.slice(2);
const cap = Number(capArg), heldPercent = Number(heldArg);
const { total, selected } = JSON.parse(fs.readFileSync(selectedPath, "utf8"));
const fields = fs.readFileSync(fieldsPath, "utf8").split("\n");
const han = /^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+$/u;
const hash32 = s => crypto.createHash("sha256").update(s, "utf8").digest().readUInt32BE(0);
const formOf = (n, len) => (len === 5 ? "wu" : "qi") + (n === 4 ? "jue" : "lv");

let k = 0, dropped = 0, duplicates = 0;
const seen = new Set(), byForm = { wujue: [], qijue: [], wulv: [], qilv: [] };
selected.forEach((s, order) => {
  const title = fields[k++], author = fields[k++], lines = fields.slice(k, k + s.nlines);
  k += s.nlines;
  const len = [...lines[0]].length;
  if (!lines.every(l => han.test(l) && [...l].length === len)) { dropped++; return; }
  const body = lines.join("|");
  if (seen.has(body)) { duplicates++; return; }
  seen.add(body);
  byForm[formOf(lines.length, len)].push({ order, title, author, lines, rank: hash32(body) });
});
const kept = [];
const stats = { total, regular: selected.length, dropped, duplicates, forms: {} };
for (const [form, poems] of Object.entries(byForm)) {
  poems.sort((a, b) => a.rank - b.rank || a.order - b.order);
  const chosen = poems.slice(0, cap);
  stats.forms[form] = { available: poems.length, kept: chosen.length, heldout: 0 };
  for (const p of chosen) {
    p.form = form;
    p.split = hash32(p.title + "\u0000" + p.author) % 100 < heldPercent ? "heldout" : "train";
    if (p.split === "heldout") stats.forms[form].heldout++;
    kept.push(p);
  }
}
// Variants of one poem (other title, other author, one character changed) must not put a held-out poem's
// text into training: drop every train poem that shares two consecutive lines with a held-out poem.
const pairs = p => p.lines.slice(1).map((line, i) => p.lines[i] + "|" + line);
const heldPairs = new Set(kept.filter(p => p.split === "heldout").flatMap(pairs));
const clean = new Set(kept.filter(p => p.split === "heldout" || !pairs(p).some(x => heldPairs.has(x))));
stats.variants = kept.length - clean.size;
for (const p of kept) if (!clean.has(p)) stats.forms[p.form].kept--;
kept.length = 0;
kept.push(...clean);
kept.sort((a, b) => a.order - b.order); // corpus order: by poet, as the source lists them
const out = kept.map(p => JSON.stringify({ title: p.title, author: p.author, form: p.form,
                                           lines: p.lines, split: p.split })).join("\n") + "\n";
fs.writeFileSync(outPath, out);
stats.bytes = Buffer.byteLength(out);
fs.writeFileSync(statsPath, JSON.stringify(stats));
EOF

bytes=$(stat -c %s "$out/poems.jsonl")
[ "$bytes" -le "$MAX_BYTES" ] || { echo "build_data: poems.jsonl is $bytes bytes (> $MAX_BYTES); lower PER_FORM_CAP" >&2; exit 1; }
cp "$pkg/LICENSE" "$out/LICENSE-chinese-poetry"

# 4. README with the counts of this build.
node - "$work/stats.json" "$out/README.md" "$PKG_VERSION" "$PER_FORM_CAP" "$HELDOUT_PERCENT" <<'EOF'
const fs = require("fs");
const [statsPath, readmePath, version, cap, held] = process.argv.slice(2);
const s = JSON.parse(fs.readFileSync(statsPath, "utf8"));
const names = { wujue: "五言绝句", qijue: "七言绝句", wulv: "五言律诗", qilv: "七言律诗" };
let rows = "", kept = 0, heldout = 0;
for (const [form, c] of Object.entries(s.forms)) {
  rows += `| ${form} | ${names[form]} | ${c.available} | ${c.kept} | ${c.kept - c.heldout} | ${c.heldout} |\n`;
  kept += c.kept; heldout += c.heldout;
}
fs.writeFileSync(readmePath, `# Bundled data: regular-form Tang poems

\`poems.jsonl\` holds ${kept} Tang poems of the four regular forms, one JSON object a line:

    {"title":"...","author":"...","form":"wujue|qijue|wulv|qilv","lines":["...", ...],"split":"train|heldout"}

\`lines\` are the 句 of the poem without punctuation (each 5 or 7 Han characters); the poem is written
\`line1，line2。line3，line4。…\`. Characters are simplified (OpenCC t2s). ${heldout} poems (~${held}%, chosen by a
SHA-256 hash of title + NUL + author) are held out: no file derived for training ever contains them, and every
evaluation uses them. \`jielong data poems\` derives the datasets of every stage from this file.

| form | 体裁 | regular poems in the source | kept | train | held-out |
|------|------|----:|----:|----:|----:|
${rows}
## How it was built

\`bash scripts/build_data.sh\` rebuilds this folder: it installs the npm package \`chinese-poetry@${version}\`
(MIT, see LICENSE-chinese-poetry; the poems themselves are public domain) into a temporary folder, reads
\`dist/quantangshi/poet.tang.*.json\` (${s.total} poems), keeps those whose text splits into 4 or 8 lines of
5 (or 7) Han characters punctuated \`，。，。…\` exactly, without the mark 囗 of an illegible character
(${s.regular}), converts them to simplified with OpenCC,
drops ${s.dropped} whose simplified text uses a character outside the BMP CJK blocks (OpenCC maps some
rare characters to CJK Extension B and later) and ${s.duplicates} duplicate texts, then keeps
at most ${cap} poems per form (the ones with the smallest SHA-256 hash of their text, so the subset is
deterministic and the file stays under 5 MB: ${s.bytes} bytes), and finally drops the ${s.variants} train poems
that share two consecutive lines with a held-out poem (variants of one poem under another title or author), so
no held-out text reaches training. Poems are listed in the source's order.
`);
EOF
cat "$work/stats.json" >&2; echo >&2
echo "build_data: wrote $out/poems.jsonl ($bytes bytes), $out/LICENSE-chinese-poetry, $out/README.md" >&2
