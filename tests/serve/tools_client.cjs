// The official OpenAI client's tool-calling flow against jielong serve (issue 17), with the tiny model
// tests/test_tools.c trains to call the calculator:
//  1. tools declared by the client: the answer is a tool call (finish_reason "tool_calls"), streamed the same
//     (call deltas shaped as OpenAI's; the library's accumulator gives the same message); malformed tool fields: 400;
//     the client runs the tool and sends the result back as a "tool" message with its tool_call_id; the model answers.
//  2. (PORT2) the server's own --tools calculator: the server runs the call and generates again by itself, for every
//     choice of n = 2 on its own, streamed (content deltas of the final answer) or not.
// Env: PORT, PORT2, JL_NPM (folder with node_modules).
const path = require("path"), assert = require("assert");
const OpenAI = require(path.join(process.env.JL_NPM, "node_modules", "openai")).default;
const client = new OpenAI({ baseURL: `http://127.0.0.1:${process.env.PORT}/v1`, apiKey: "none", maxRetries: 0, timeout: 60000 });
const tools = [{ type: "function", function: { name: "calculator", description: "exact arithmetic" } }];

async function main() {
  const model = (await client.models.list()).data[0].id;
  const messages = [{ role: "user", content: "3+4" }];
  const first = await client.chat.completions.create({ model, messages, tools, temperature: 0, max_tokens: 90 });
  const msg = first.choices[0].message;
  assert.strictEqual(first.choices[0].finish_reason, "tool_calls");
  assert.strictEqual(msg.tool_calls.length, 1);
  const call = msg.tool_calls[0];
  assert.strictEqual(call.type, "function");
  assert.strictEqual(call.function.name, "calculator");
  const args = JSON.parse(call.function.arguments);
  assert.ok(args && typeof args === "object" && !Array.isArray(args));
  assert.ok(typeof call.id === "string" && call.id.length > 0);

  const stream = await client.chat.completions.create({ model, messages, tools, temperature: 0, max_tokens: 90, stream: true });
  const acc = {}, callDeltas = []; let finish = null;
  for await (const ch of stream) {
    if (!ch.choices.length) continue;
    const d = ch.choices[0].delta;
    for (const tc of d.tool_calls || []) {
      callDeltas.push(tc);
      const a = acc[tc.index] || (acc[tc.index] = { name: "", arguments: "" });
      if (tc.function && tc.function.name) a.name += tc.function.name;
      if (tc.function && tc.function.arguments) a.arguments += tc.function.arguments;
    }
    if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
  }
  assert.strictEqual(finish, "tool_calls");
  assert.deepStrictEqual(acc[0], { name: "calculator", arguments: call.function.arguments }, "streamed call = non-streamed");
  assert.deepStrictEqual(callDeltas.map(d => [d.index, typeof d.id, d.type, d.function.name, d.function.arguments === ""]),
    [[0, "string", "function", "calculator", true], [0, "undefined", undefined, undefined, false]],
    "a call streams as OpenAI's: id, type and name with empty arguments, then the arguments");
  // the client library's own stream accumulator gives the non-streamed message
  const helper = await client.chat.completions.stream({ model, messages, tools, temperature: 0, max_tokens: 90 }).finalChatCompletion();
  assert.strictEqual(helper.choices[0].finish_reason, "tool_calls");
  assert.strictEqual(helper.choices[0].message.content ?? null, msg.content ?? null);
  assert.deepStrictEqual(helper.choices[0].message.tool_calls.map(c => c.function), msg.tool_calls.map(c => c.function));

  // the client runs the tool and sends the result back
  messages.push(msg, { role: "tool", tool_call_id: call.id, content: "7" });
  const second = await client.chat.completions.create({ model, messages, tools, temperature: 0, max_tokens: 20 });
  assert.ok(second.usage.prompt_tokens > first.usage.prompt_tokens + 10, "the call and its result are in the prompt");
  assert.ok(typeof second.choices[0].message.content === "string" || second.choices[0].message.tool_calls);

  // tool_choice none: no tools declared, plain text back
  const none = await client.chat.completions.create({ model, messages: [{ role: "user", content: "3+4" }], tools,
    tool_choice: "none", temperature: 0, max_tokens: 10 });
  assert.strictEqual(none.choices[0].message.tool_calls, undefined);
  assert.strictEqual(typeof none.choices[0].message.content, "string");

  // bad tool fields: 400 naming the field
  const bad = [[{ tools: [{ type: "function", function: {} }] }, "tools[0]"], [{ tools, tool_choice: "always" }, "tool_choice"],
    [{ tools, tool_choice: { type: "function", function: { name: "nope" } } }, "tool_choice"],
    [{ messages: [{ role: "user", content: "q" }, { role: "assistant", tool_calls: [] }] }, "messages[1].tool_calls"],
    [{ tools: { type: "function" } }, "tools"], [{ tools: ["calculator"] }, "tools[0]"], [{ tools, tool_choice: 3 }, "tool_choice"],
    [{ tools, tool_choice: { type: "function", function: {} } }, "tool_choice"],
    ...[{ type: "function", function: { name: "calculator", arguments: "{not json" } },
        { type: "function", function: { name: "calculator", arguments: "[1]" } },
        { type: "function", function: { arguments: "{}" } }, { type: "function" }, "calculator"].map(c =>
      [{ messages: [{ role: "user", content: "q" }, { role: "assistant", tool_calls: [c] }] }, "messages[1].tool_calls"]),
    [{ messages: [{ role: "user", content: "q" }, { role: "assistant", tool_calls: { id: "x" } }] }, "messages[1].tool_calls"]];
  for (const [extra, param] of bad)
    await assert.rejects(client.chat.completions.create({ model, messages, max_tokens: 4, ...extra }),
      e => e.status === 400 && e.param === param, JSON.stringify(extra));

  // the server's own tools: it runs the calculator and generates again (a longer prompt than the first round's)
  const server = new OpenAI({ baseURL: `http://127.0.0.1:${process.env.PORT2}/v1`, apiKey: "none", maxRetries: 0, timeout: 60000 });
  const own = await server.chat.completions.create({ model, messages: [{ role: "user", content: "3+4" }], temperature: 0, max_tokens: 20 });
  assert.ok(own.usage.prompt_tokens > first.usage.prompt_tokens + first.usage.completion_tokens,
    `a second round with the tool's result: prompt ${own.usage.prompt_tokens} tokens`);
  // streamed, the server's rounds end in the final answer's content deltas; the client's accumulator gives `own`
  let deltas = 0;
  const ownStream = server.chat.completions.stream({ model, messages: [{ role: "user", content: "3+4" }], temperature: 0, max_tokens: 20 });
  ownStream.on("content", () => deltas++);
  const ownS = await ownStream.finalChatCompletion();
  const ownText = own.choices[0].message.content || ""; // the library's accumulator leaves an empty answer null
  assert.deepStrictEqual([ownS.choices[0].message.content || "", ownS.choices[0].finish_reason, ownS.choices[0].message.tool_calls],
    [ownText, own.choices[0].finish_reason, own.choices[0].message.tool_calls], "streamed = not streamed");
  assert.ok(deltas >= (ownText ? 1 : 0), "content deltas");
  // a longer answer (extension ignore_eos) of a tools request arrives one delta per token, as generated
  const longReq = { model, messages: [{ role: "user", content: "hi" }], temperature: 0, max_tokens: 16, ignore_eos: true };
  const long = await server.chat.completions.create(longReq);
  let longDeltas = 0;
  const longStream = server.chat.completions.stream(longReq);
  longStream.on("content", () => longDeltas++);
  const longS = await longStream.finalChatCompletion();
  assert.strictEqual(longS.choices[0].message.content, long.choices[0].message.content);
  assert.ok(typeof long.choices[0].message.content === "string" && long.choices[0].message.content.length >= 2);
  assert.ok(longDeltas >= 2, `several content deltas (${longDeltas})`);
  // n = 2: each choice runs its own rounds (greedy, so both give the n = 1 answer), streamed or not
  const own2 = await server.chat.completions.create({ model, messages: [{ role: "user", content: "3+4" }], temperature: 0,
    max_tokens: 20, n: 2 });
  assert.strictEqual(own2.choices.length, 2);
  for (const c of own2.choices)
    assert.deepStrictEqual([c.message.content, c.finish_reason, c.message.tool_calls],
      [own.choices[0].message.content, own.choices[0].finish_reason, own.choices[0].message.tool_calls], "n = 2: each choice's rounds");
  assert.deepStrictEqual(own2.usage, { prompt_tokens: 2 * own.usage.prompt_tokens, completion_tokens: 2 * own.usage.completion_tokens,
    total_tokens: 2 * own.usage.total_tokens }, "usage: the final round of both choices");
  const text2 = ["", ""], fin2 = [null, null]; let usage2 = null;
  for await (const ch of await server.chat.completions.create({ model, messages: [{ role: "user", content: "3+4" }], temperature: 0,
    max_tokens: 20, n: 2, stream: true, stream_options: { include_usage: true } })) {
    if (ch.usage) usage2 = ch.usage;
    for (const c of ch.choices) { text2[c.index] += c.delta.content || ""; if (c.finish_reason) fin2[c.index] = c.finish_reason; }
  }
  assert.deepStrictEqual([text2, fin2, usage2], [own2.choices.map(c => c.message.content || ""), own2.choices.map(c => c.finish_reason),
    own2.usage], "n = 2 streamed = not streamed");
  console.log("tool flow ok:", JSON.stringify({ call: call.function, second: second.choices[0].message, own: own.choices[0].message,
    own_streamed_deltas: deltas, long_deltas: longDeltas }));
}
main().catch(e => { console.error(e); process.exit(1); });
