// Load and faults against jielong serve (plain node http/net, no packages): CLIENTS concurrent streaming clients
// × ROUNDS requests each, some disconnecting mid-stream, one slow reader that must not stall the others; every
// request ends with a full answer or a clear error; afterwards no slot is held; then a catalogue of malformed
// requests, each with its expected 4xx. Env: PORT, CLIENTS (64), ROUNDS (2), CONTEXT (positions per slot),
// CATALOGUE (0: skip the malformed requests).
const http = require("http"), net = require("net"), assert = require("assert");
const PORT = +process.env.PORT, CLIENTS = +(process.env.CLIENTS || 64), ROUNDS = +(process.env.ROUNDS || 2);
const CONTEXT = +(process.env.CONTEXT || 128);

function post(path, body, onChunk) { /* resolves {status, headers, text}; onChunk(req, text) may destroy the request */
  return new Promise((resolve) => {
    const data = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
    const req = http.request({ host: "127.0.0.1", port: PORT, path, method: "POST",
      headers: { "Content-Type": "application/json", "Content-Length": data.length } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => { text += d; if (onChunk) onChunk(req, text, res); });
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, text }));
      res.on("error", () => resolve({ status: res.statusCode, headers: res.headers, text, aborted: true }));
      res.on("aborted", () => resolve({ status: res.statusCode, headers: res.headers, text, aborted: true }));
    });
    req.on("error", (e) => resolve({ status: 0, error: e.message, aborted: true }));
    req.end(data);
  });
}

function get(path) {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port: PORT, path }, (res) => {
      let t = ""; res.on("data", (d) => t += d); res.on("end", () => resolve({ status: res.statusCode, text: t }));
    }).on("error", reject);
  });
}

function checkStream(r) { /* a full SSE answer: chunks, a finish_reason, [DONE] last */
  assert.strictEqual(r.status, 200, `status ${r.status}: ${r.text}`);
  const events = r.text.split("\n\n").filter(Boolean);
  assert.strictEqual(events[events.length - 1], "data: [DONE]");
  const chunks = events.slice(0, -1).map((e) => { assert.ok(e.startsWith("data: ")); return JSON.parse(e.slice(6)); });
  assert.ok(chunks.some((c) => c.choices.length && c.choices[0].finish_reason));
  return chunks.map((c) => (c.choices[0] && c.choices[0].delta.content) || "").join("");
}

async function metric(name) {
  const m = (await get("/metrics")).text.match(new RegExp(`^${name} (\\S+)$`, "m"));
  return m ? +m[1] : NaN;
}

async function load() {
  let full = 0, errors = 0, dropped = 0;
  const slowDone = { t: 0 };
  const fastTimes = [];
  const t0 = Date.now();
  /* the slow client: stops reading for 2 s after its first chunk */
  const slow = post("/v1/chat/completions", { messages: [{ role: "user", content: "slow" }], stream: true,
    max_tokens: 60, ignore_eos: true, temperature: 0.8, seed: 1 }, (req, text, res) => {
    if (!res._paused) {
      res._paused = true; res.pause(); slowDone.pausedAt = Date.now() - t0;
      setTimeout(() => { slowDone.resumedAt = Date.now() - t0; res.resume(); }, 2000);
    }
  }).then((r) => { slowDone.t = Date.now() - t0; checkStream(r); });
  const clients = [];
  for (let c = 0; c < CLIENTS; c++) clients.push((async () => {
    for (let k = 0; k < ROUNDS; k++) {
      const disconnect = c % 8 === 3 && k === 0;
      const body = { messages: [{ role: "user", content: `client ${c} round ${k}` }], stream: true, max_tokens: 20,
                     temperature: 0.8, seed: c * 10 + k };
      const r = await post("/v1/chat/completions", body, disconnect ? (req, text) => {
        if (text.split("\n\n").length > 3) req.destroy();
      } : null);
      if (disconnect) { dropped++; continue; }
      if (r.status === 503) { assert.ok(r.headers["retry-after"], "503 with Retry-After"); errors++; continue; }
      checkStream(r);
      full++;
      fastTimes.push(Date.now() - t0);
    }
  })());
  await Promise.all(clients);
  const fastEnd = Math.max(...fastTimes);
  await slow;
  console.log(`load: ${full} full answers, ${errors} 503s, ${dropped} disconnects, fast clients done at ${fastEnd} ms, ` +
    `slow one paused ${slowDone.pausedAt}..${slowDone.resumedAt} ms, done at ${slowDone.t} ms`);
  assert.strictEqual(full + errors + dropped, CLIENTS * ROUNDS);
  const duringPause = fastTimes.filter((t) => t > slowDone.pausedAt && t < slowDone.resumedAt).length;
  assert.ok(duringPause > 0, "other requests complete while the slow client is not reading");
  assert.ok(full >= CLIENTS * ROUNDS / 2, "most requests are answered");
  /* slots come back: disconnected streams free theirs at the next step */
  let used = NaN, active = NaN;
  for (let i = 0; i < 50; i++) {
    used = await metric("jielong_kv_slots_used"); active = await metric("jielong_requests_active");
    if (used === 0 && active === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.strictEqual(used, 0, "no KV slot is held after the load");
  assert.strictEqual(active, 0);
  assert.strictEqual(await metric("jielong_requests_queued"), 0);
}

/* one raw HTTP request; resolves the status code and the head. halfClose: end our side once sent (a request that
 * generates must not: the server takes a client that closed its side as gone and cancels the answer) */
function raw(bytes, halfClose = true) {
  return new Promise((resolve) => {
    const s = net.connect(PORT, "127.0.0.1");
    let buf = Buffer.alloc(0);
    s.on("data", (d) => { buf = Buffer.concat([buf, d]); });
    s.on("end", () => finish());
    s.on("error", () => finish());
    s.on("close", () => finish());
    let done = false;
    function finish() {
      if (done) return; done = true;
      const head = buf.toString("latin1");
      const m = head.match(/^HTTP\/1\.[01] (\d{3})/);
      resolve({ status: m ? +m[1] : 0, head });
    }
    s.write(bytes, () => { if (halfClose) s.end(); });
    setTimeout(() => s.destroy(), 8000);
  });
}

function request(method, path, body, extraHeaders = "") {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body || "");
  return Buffer.concat([Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${b.length}\r\n${extraHeaders}\r\n`), b]);
}

async function catalogue() {
  const chat = (o) => request("POST", "/v1/chat/completions", JSON.stringify(o));
  const user = [{ role: "user", content: "hi" }];
  const cases = [
    ["truncated JSON", request("POST", "/v1/chat/completions", '{"messages":[{"role":"user"'), 400],
    ["not JSON", request("POST", "/v1/chat/completions", "hello"), 400],
    ["empty body", request("POST", "/v1/chat/completions", ""), 400],
    ["array body", request("POST", "/v1/chat/completions", "[]"), 400],
    ["trailing garbage", request("POST", "/v1/chat/completions", '{"messages":[]} x'), 400],
    ["no messages", chat({}), 400],
    ["messages not a list", chat({ messages: "hi" }), 400],
    ["empty messages", chat({ messages: [] }), 400],
    ["message not an object", chat({ messages: ["hi"] }), 400],
    ["unknown role", chat({ messages: [{ role: "robot", content: "x" }] }), 400],
    ["content a number", chat({ messages: [{ role: "user", content: 5 }] }), 400],
    ["only a system message", chat({ messages: [{ role: "system", content: "x" }] }), 400],
    ["temperature a string", chat({ messages: user, temperature: "hot" }), 400],
    ["negative temperature", chat({ messages: user, temperature: -1 }), 400],
    ["top_p 0", chat({ messages: user, top_p: 0 }), 400],
    ["negative max_tokens", chat({ messages: user, max_tokens: -5 }), 400],
    ["fractional max_tokens", chat({ messages: user, max_tokens: 1.5 }), 400],
    ["huge n", chat({ messages: user, n: 1000 }), 400],
    ["stop a number", chat({ messages: user, stop: 7 }), 400],
    ["five stop strings", chat({ messages: user, stop: ["a", "b", "c", "d", "e"] }), 400],
    ["logprobs a string", chat({ messages: user, logprobs: "yes" }), 400],
    ["top_logprobs 50", chat({ messages: user, logprobs: true, top_logprobs: 50 }), 400],
    ["top_logprobs without logprobs", chat({ messages: user, top_logprobs: 2 }), 400],
    ["seed a string", chat({ messages: user, seed: "x" }), 400],
    ["stream a string", chat({ messages: user, stream: "yes" }), 400],
    ["invalid UTF-8", request("POST", "/v1/chat/completions",
      Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"'), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from('"}]}')])), 400],
    ["prompt longer than the context", chat({ messages: [{ role: "user", content: "x".repeat(CONTEXT * 2) }] }), 400],
    ["10 MB body", request("POST", "/v1/chat/completions", Buffer.alloc(10 << 20, 0x20)), 413],
    ["completion without prompt", request("POST", "/v1/completions", "{}"), 400],
    ["max_tokens 0 without echo", request("POST", "/v1/completions", '{"prompt":"a","max_tokens":0}'), 400],
    ["detokenize an id out of range", request("POST", "/detokenize", '{"tokens":[1,99999999]}'), 400],
    ["tokenize without content", request("POST", "/tokenize", '{"text":1}'), 400],
    ["GET on a POST route", request("GET", "/v1/chat/completions", ""), 405],
    ["POST on a GET route", request("POST", "/v1/models", "{}"), 405],
    ["unknown path", request("GET", "/v1/nothing", ""), 404],
    ["path traversal", request("GET", "/../../etc/passwd", ""), 404],
    ["header injection (CR LF in the request line)", Buffer.from("GET /health\r\nInjected: 1 HTTP/1.1\r\nHost: x\r\n\r\n"), 400],
    ["header injection (a header line without a colon)", Buffer.from("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nInjected 1\r\nContent-Length: 2\r\n\r\n{}"), 400],
    ["unknown fields are ignored", chat({ messages: user, max_tokens: 2, frobnicate: { deep: [1, 2] }, user: "u" }), 200],
  ];
  let ok = 0;
  for (const [name, bytes, want] of cases) {
    const r = await raw(bytes, want >= 400);
    if (r.status !== want) { console.error(`catalogue: ${name}: got ${r.status}, want ${want}\n${r.head.slice(0, 400)}`); process.exitCode = 1; }
    else ok++;
    if (want >= 400 && want !== 413 && r.status === want && !/"error":\{"message"/.test(r.head) && !/400 Bad Request/.test(r.head))
      { console.error(`catalogue: ${name}: no OpenAI error object`); process.exitCode = 1; }
    assert.ok(!/^Injected:/m.test(r.head));
  }
  console.log(`catalogue: ${ok} of ${cases.length} malformed or odd requests got the right status`);
}

(async () => {
  await load();
  if (process.env.CATALOGUE !== "0") await catalogue();
  assert.strictEqual((await get("/health")).status, 200, "still healthy after the faults");
})().catch((e) => { console.error(e); process.exit(1); });
