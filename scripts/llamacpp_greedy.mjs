// Loads a GGUF with llama.cpp (node-llama-cpp's prebuilt CPU binary, no build, no download) and prints:
//   line 1: the ids llama.cpp's tokenizer gives TEXT;  line 2: N greedy ids after the prompt ids.
// usage: node llamacpp_greedy.mjs MODEL.gguf N "TEXT" id...
import {getLlama} from "node-llama-cpp";

const [modelPath, nStr, text, ...ids] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
console.log(model.tokenize(text, true).join(" "));
const context = await model.createContext({contextSize: 128, batchSize: 128});
const seq = context.getSequence();
const out = [];
for await (const tok of seq.evaluate(ids.map(Number), {temperature: 0})) {
    out.push(tok);
    if (out.length >= Number(nStr)) break;
}
console.log(out.join(" "));
await context.dispose();
await model.dispose();
