// The official OpenAI client against jielong serve: chat with and without streaming, logprobs, n: 2, and
// completions with echo + logprobs. Greedy answers must equal `jielong chat` / `jielong generate` (EXPECT file).
// Env: PORT, JL_NPM (folder with node_modules), EXPECT (JSON: {chat, generate, prompt, user, max_tokens}).
const path = require("path"), fs = require("fs"), assert = require("assert");
const OpenAI = require(path.join(process.env.JL_NPM, "node_modules", "openai")).default;
const want = JSON.parse(fs.readFileSync(process.env.EXPECT, "utf8"));
const client = new OpenAI({ baseURL: `http://127.0.0.1:${process.env.PORT}/v1`, apiKey: "test-key", maxRetries: 0, timeout: 20000 });
const messages = [{ role: "user", content: want.user }];

async function main() {
  const models = await client.models.list();
  assert.strictEqual(models.data.length, 1);
  const model = models.data[0].id;

  const chat = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: want.max_tokens });
  assert.strictEqual(chat.object, "chat.completion");
  assert.strictEqual(chat.choices[0].message.role, "assistant");
  assert.strictEqual(chat.choices[0].message.content, want.chat, "non-streamed chat = jielong chat");
  assert.ok(["stop", "length"].includes(chat.choices[0].finish_reason));
  assert.ok(chat.usage.prompt_tokens > 0 && chat.usage.total_tokens === chat.usage.prompt_tokens + chat.usage.completion_tokens);

  const stream = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: want.max_tokens,
    stream: true, stream_options: { include_usage: true }, logprobs: true, top_logprobs: 3 });
  let text = "", chunks = 0, finish = null, usage = null, lps = [];
  for await (const ch of stream) {
    chunks++;
    if (ch.usage) usage = ch.usage;
    if (!ch.choices.length) continue;
    const c = ch.choices[0];
    text += c.delta.content || "";
    if (c.logprobs && c.logprobs.content) lps.push(...c.logprobs.content);
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.strictEqual(text, want.chat, "streamed chat = jielong chat");
  assert.ok(chunks >= 3 && finish && usage && usage.completion_tokens === lps.length);
  for (const lp of lps) { /* greedy: the chosen token is the most likely one, and top_logprobs are sorted */
    assert.strictEqual(lp.top_logprobs.length, 3);
    assert.ok(lp.logprob <= 0 && Math.abs(lp.logprob - lp.top_logprobs[0].logprob) < 1e-6);
    for (let i = 1; i < 3; i++) assert.ok(lp.top_logprobs[i].logprob <= lp.top_logprobs[i - 1].logprob);
  }

  const lpchat = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: 4, logprobs: true, top_logprobs: 2 });
  assert.strictEqual(lpchat.choices[0].logprobs.content.length, lpchat.usage.completion_tokens);

  const two = await client.chat.completions.create({ model, messages, temperature: 1.0, seed: 5, n: 2, max_tokens: 12 });
  assert.strictEqual(two.choices.length, 2);
  assert.deepStrictEqual(two.choices.map(c => c.index), [0, 1]);
  const again = await client.chat.completions.create({ model, messages, temperature: 1.0, seed: 5, n: 2, max_tokens: 12 });
  assert.deepStrictEqual(again.choices.map(c => c.message.content), two.choices.map(c => c.message.content), "same seed, same choices");

  /* n choices share one prefill (the others copy its cache): each greedy choice is still jielong chat's answer */
  const three = await client.chat.completions.create({ model, messages, temperature: 0, n: 3, max_tokens: want.max_tokens });
  assert.deepStrictEqual(three.choices.map(c => c.message.content), [want.chat, want.chat, want.chat], "shared prefill");
  const cmpl3 = await client.completions.create({ model, prompt: [want.prompt, want.prompt], temperature: 0, n: 2,
    max_tokens: want.max_tokens });
  assert.deepStrictEqual(cmpl3.choices.map(c => c.text), [want.generate, want.generate, want.generate, want.generate]);

  const cmpl = await client.completions.create({ model, prompt: want.prompt, temperature: 0, max_tokens: want.max_tokens });
  assert.strictEqual(cmpl.choices[0].text, want.generate, "completion = jielong generate");

  const echo = await client.completions.create({ model, prompt: want.prompt, echo: true, logprobs: 2, max_tokens: 0 });
  const l = echo.choices[0].logprobs;
  assert.strictEqual(echo.choices[0].text, want.prompt);
  assert.strictEqual(l.tokens.join(""), want.prompt);
  assert.strictEqual(l.token_logprobs.length, l.tokens.length);
  assert.ok(l.token_logprobs.every(x => typeof x === "number" && x <= 0));
  assert.deepStrictEqual(l.text_offset[0], 0);
  const echo2 = await client.completions.create({ model, prompt: want.prompt, echo: true, logprobs: 1, max_tokens: 3, temperature: 0 });
  assert.ok(echo2.choices[0].text.startsWith(want.prompt));
  assert.strictEqual(echo2.choices[0].logprobs.tokens.length, l.tokens.length + echo2.usage.completion_tokens);
  assert.deepStrictEqual(echo2.choices[0].logprobs.token_logprobs.slice(0, l.tokens.length), l.token_logprobs);

  let status = 0;
  try { await client.chat.completions.create({ model, messages: [{ role: "robot", content: "x" }] }); }
  catch (e) { status = e.status; assert.ok(/role/.test(e.message)); }
  assert.strictEqual(status, 400);
  console.log("openai client: all checks passed");
}
main().catch(e => { console.error(e); process.exit(1); });
