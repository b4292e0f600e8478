// Chats with a GGUF through llama.cpp (node-llama-cpp's prebuilt CPU binary, no build, no download): the chat
// format comes from the file's tokenizer.chat_template, as node-llama-cpp resolves it. Greedy.
// usage: node llamacpp_chat.mjs MODEL.gguf MAX_TOKENS SYSTEM "turn 1" "turn 2" ...   → one JSON string per answer
import {getLlama, LlamaChatSession} from "node-llama-cpp";

const [modelPath, maxTokens, systemPrompt, ...turns] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: 128, batchSize: 128});
const session = new LlamaChatSession({contextSequence: context.getSequence(), systemPrompt});
console.error(`llamacpp_chat: chat wrapper ${session.chatWrapper.wrapperName}`);
for (const turn of turns) {
    const answer = await session.prompt(turn, {temperature: 0, maxTokens: Number(maxTokens)});
    console.log(JSON.stringify(answer));
}
await context.dispose();
await model.dispose();
