// llama.cpp's side of tests/test_gguf_llamacpp.c: node-llama-cpp's prebuilt CPU binary (no build, no download at
// run time) loads each GGUF of a job file and answers, one JSON line per job:
//   {"tokens": llama.cpp's ids of TEXT (special-token names in it parsed as specials),
//    "plain": its ids of TEXT with special-token names as plain text,
//    "greedy": N greedy ids after the prompt ids, "eog": whether each of them ends a generation for llama.cpp,
//    "bos", "eos": llama.cpp's BOS and EOS ids (-1: none)}
// usage: node llamacpp_check.mjs JOBS.json   with JOBS = [{"gguf": path, "text": str, "prompt": [id...], "n": N}, ...]
// One process for every job: node-llama-cpp's start-up is paid once.
import {readFileSync} from "node:fs";
import {getLlama} from "node-llama-cpp";

const jobs = JSON.parse(readFileSync(process.argv[2], "utf8"));
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
for (const job of jobs) {
    const model = await llama.loadModel({modelPath: job.gguf});
    const tokens = Array.from(model.tokenize(job.text, true));
    const plain = Array.from(model.tokenize(job.text, false));
    const context = await model.createContext({contextSize: job.prompt.length + job.n + 8, batchSize: 64,
                                               threads: 1});
    const greedy = [];
    for await (const tok of context.getSequence().evaluate(job.prompt, {temperature: 0})) {
        greedy.push(tok);
        if (greedy.length >= job.n) break;
    }
    const eog = greedy.map((t) => model.isEogToken(t));
    const bos = model.tokens.bos ?? -1, eos = model.tokens.eos ?? -1;
    console.log(JSON.stringify({tokens, plain, greedy, eog, bos, eos}));
    await context.dispose();
    await model.dispose();
}
