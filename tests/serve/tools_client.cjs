// The official OpenAI client's tool-calling flow against jielong serve (issue 17), with the tiny model
// tests/test_tools.c trains to call the calculator:
//  1. tools declared by the client: the answer is a tool call (finish_reason "tool_calls"), streamed the same;
//     the client runs the tool and sends the result back as a "tool" message with its tool_call_id; the model answers.
//  2. (PORT2) the server's own --tools calculator: the server runs the call and generates again by itself.
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
  const acc = {}; let finish = null;
  for await (const ch of stream) {
    if (!ch.choices.length) continue;
    const d = ch.choices[0].delta;
    for (const tc of d.tool_calls || []) {
      const a = acc[tc.index] || (acc[tc.index] = { name: "", arguments: "" });
      if (tc.function && tc.function.name) a.name += tc.function.name;
      if (tc.function && tc.function.arguments) a.arguments += tc.function.arguments;
    }
    if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
  }
  assert.strictEqual(finish, "tool_calls");
  assert.deepStrictEqual(acc[0], { name: "calculator", arguments: call.function.arguments }, "streamed call = non-streamed");

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
    [{ messages: [{ role: "user", content: "q" }, { role: "assistant", tool_calls: [] }] }, "messages[1].tool_calls"]];
  for (const [extra, param] of bad)
    await assert.rejects(client.chat.completions.create({ model, messages, max_tokens: 4, ...extra }),
      e => e.status === 400 && e.param === param, JSON.stringify(extra));

  // the server's own tools: it runs the calculator and generates again (a longer prompt than the first round's)
  const server = new OpenAI({ baseURL: `http://127.0.0.1:${process.env.PORT2}/v1`, apiKey: "none", maxRetries: 0, timeout: 60000 });
  const own = await server.chat.completions.create({ model, messages: [{ role: "user", content: "3+4" }], temperature: 0, max_tokens: 20 });
  assert.ok(own.usage.prompt_tokens > first.usage.prompt_tokens + first.usage.completion_tokens,
    `a second round with the tool's result: prompt ${own.usage.prompt_tokens} tokens`);
  console.log("tool flow ok:", JSON.stringify({ call: call.function, second: second.choices[0].message, own: own.choices[0].message }));
}
main().catch(e => { console.error(e); process.exit(1); });
