// llama.cpp's side of bench/bench_llamacpp.c: node-llama-cpp's prebuilt CPU binary decodes greedily from a GGUF.
// usage: node llamacpp_decode.mjs MODEL.gguf N THREADS  → one line: the decode rate in tok/s of N greedy tokens after
// a 1-token prompt (timed from the first generated token to the last, as jielong's side is; the load is not timed).
import {getLlama} from "node-llama-cpp";

const [modelPath, nStr, threadsStr] = process.argv.slice(2);
const n = Number(nStr);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: n + 16, batchSize: 16, threads: Number(threadsStr)});
let count = 0, t0 = 0;
for await (const tok of context.getSequence().evaluate([1], {temperature: 0})) {
    void tok;
    if (count++ === 0) t0 = performance.now();
    if (count > n) break;
}
console.log((n / ((performance.now() - t0) / 1000)).toFixed(2));
await context.dispose();
await model.dispose();
