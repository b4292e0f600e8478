// Chats with a GGUF through llama.cpp (node-llama-cpp's prebuilt CPU binary, no build, no download) for
// tests/test_llamacpp_chat.c: the chat format comes from the file's tokenizer.chat_template, as node-llama-cpp
// resolves it (its JinjaTemplate wrapper). Greedy.
// usage: node llamacpp_chat.mjs MODEL.gguf MAX_TOKENS CONVERSATIONS.json
//   CONVERSATIONS.json: a list of {"system": S or null, "turns": ["user turn", ...]}
//   → one line per conversation: the JSON array of its answers
import {readFileSync} from "fs";
import {getLlama, LlamaChatSession} from "node-llama-cpp";

const [modelPath, maxTokens, conversations] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: 128, batchSize: 128});

async function chat(systemPrompt, turns) {
    const sequence = context.getSequence();
    const session = new LlamaChatSession({contextSequence: sequence, systemPrompt: systemPrompt ?? ""});
    if (systemPrompt == null) session.setChatHistory([]); // no system turn at all (the default would add one)
    console.error(`llamacpp_chat: chat wrapper ${session.chatWrapper.wrapperName}`);
    const answers = [];
    for (const turn of turns) answers.push(await session.prompt(turn, {temperature: 0, maxTokens: Number(maxTokens)}));
    session.dispose();
    sequence.dispose();
    return answers;
}

for (const c of JSON.parse(readFileSync(conversations, "utf8"))) console.log(JSON.stringify(await chat(c.system, c.turns)));
await context.dispose();
await model.dispose();
