// Reference renders for tests/test_template.c: each job's template rendered on each of its contexts with
// @huggingface/jinja (the renderer transformers.js uses), written as JSON.
// usage: node jinja_ref.mjs PATH/TO/@huggingface/jinja/dist/index.js IN.json OUT.json
//   IN:  {"jobs": [{"template": "...", "contexts": [{...variables...}, ...]}, ...]}
//   OUT: {"renders": [[{"ok": true, "text": "..."} | {"ok": false, "error": "..."}, ...per context], ...per job]}
import fs from "fs";
import {pathToFileURL} from "url";

const [lib, inPath, outPath] = process.argv.slice(2);
const {Template} = await import(pathToFileURL(lib).href);
const input = JSON.parse(fs.readFileSync(inPath, "utf8"));
const renders = input.jobs.map((job) => {
    let tmpl = null, parseError = null;
    try { tmpl = new Template(job.template); } catch (e) { parseError = String(e.message || e); }
    return job.contexts.map((ctx) => {
        if (!tmpl) return {ok: false, error: parseError};
        try { return {ok: true, text: tmpl.render(ctx)}; } catch (e) { return {ok: false, error: String(e.message || e)}; }
    });
});
fs.writeFileSync(outPath, JSON.stringify({renders}));
