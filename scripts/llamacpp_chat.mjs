// Chats with a GGUF through llama.cpp (node-llama-cpp's prebuilt CPU binary, no build, no download) for
// tests/test_llamacpp_chat.c: the chat format comes from the file's tokenizer.chat_template, as node-llama-cpp
// resolves it (its JinjaTemplate wrapper). Greedy.
// usage: node llamacpp_chat.mjs MODEL.gguf MAX_TOKENS CONVERSATIONS.json
//   CONVERSATIONS.json: a list of {"system": S or null, "turns": ["user turn", ...]}
//   → one line per conversation: {"answers": [...], "tokens": the context sequence's tokens at its end}
import {readFileSync} from "fs";
import {getLlama, LlamaChatSession} from "node-llama-cpp";

const [modelPath, maxTokens, conversations] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: 128, batchSize: 128, threads: 1}); // no spinning threads
// one session (resolving the template's chat wrapper takes seconds); each conversation starts from its own history
const session = new LlamaChatSession({contextSequence: context.getSequence(), systemPrompt: ""});
console.error(`llamacpp_chat: chat wrapper ${session.chatWrapper.wrapperName}`);

async function chat(systemPrompt, turns) {
    // no system turn at all when there is none (LlamaChatSession's default would add one)
    session.setChatHistory(systemPrompt == null ? [] : [{type: "system", text: systemPrompt}]);
    const answers = [];
    for (const turn of turns) answers.push(await session.prompt(turn, {temperature: 0, maxTokens: Number(maxTokens)}));
    return {answers, tokens: [...session.sequence.contextTokens]};
}

for (const c of JSON.parse(readFileSync(conversations, "utf8"))) console.log(JSON.stringify(await chat(c.system, c.turns)));
session.dispose();
await context.dispose();
await model.dispose();
