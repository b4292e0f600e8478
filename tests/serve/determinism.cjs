// Same seed + same request → the same text, whether it ran alone or beside 15 other requests (sampling at
// temperature 1, so any difference in the logits would show). Env: PORT.
const assert = require("assert");
const base = `http://127.0.0.1:${process.env.PORT}`;
async function post(path, body) {
  const r = await fetch(base + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  assert.strictEqual(r.status, 200, await r.clone().text());
  return r.json();
}
const chatReq = { messages: [{ role: "user", content: "tell me a story" }], temperature: 1.0, top_p: 0.95, seed: 42, max_tokens: 40, ignore_eos: true };
const cmplReq = { prompt: "Once upon a time", temperature: 1.0, seed: 7, max_tokens: 40, ignore_eos: true };
(async () => {
  const aloneChat = (await post("/v1/chat/completions", chatReq)).choices[0].message.content;
  const aloneCmpl = (await post("/v1/completions", cmplReq)).choices[0].text;
  for (let round = 0; round < 2; round++) {
    const others = [];
    for (let i = 0; i < 14; i++)
      others.push(post("/v1/chat/completions", { messages: [{ role: "user", content: `other ${i} `.repeat(1 + i % 4) }],
        temperature: 0.9, seed: 100 + i, max_tokens: 10 + 3 * i, ignore_eos: true }));
    const mine = [post("/v1/chat/completions", chatReq), post("/v1/completions", cmplReq)];
    const [c, p] = await Promise.all(mine);
    await Promise.all(others);
    assert.strictEqual(c.choices[0].message.content, aloneChat, "chat: same text beside 15 others");
    assert.strictEqual(p.choices[0].text, aloneCmpl, "completion: same text beside 15 others");
    assert.strictEqual(c.usage.completion_tokens, 40);
  }
  console.log("determinism: same seed, same text alone and beside 15 others");
})().catch((e) => { console.error(e); process.exit(1); });
