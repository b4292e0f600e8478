// The chat page in a real browser: Debian's chromium driven headless by playwright-core. Loads /, types a message
// (with markup in it, which must show as text), sees the answer stream in, opens the probability view of a token
// with the mouse and with the keyboard, stops a long answer, switches language, starts a new chat; saves a
// screenshot. Env: PORT, JL_NPM, SHOT (png path).
const path = require("path"), assert = require("assert");
const { chromium } = require(path.join(process.env.JL_NPM, "node_modules", "playwright-core"));
(async () => {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${process.env.PORT}/`);
    assert.strictEqual(await page.title(), "接龙 jielong");
    await page.selectOption("#lang", "zh");
    assert.strictEqual(await page.textContent("#send"), "发送");
    await page.fill("#max_tokens", "24");
    await page.fill("#temperature", "0");
    /* keyboard only: the message box has focus; Enter sends */
    await page.focus("#input");
    await page.keyboard.type("你好 <img src=x onerror=window.pwned=1> hello");
    await page.keyboard.press("Enter");
    await page.waitForSelector(".msg.assistant .tok", { timeout: 20000 });
    await page.waitForFunction(() => !document.getElementById("send").disabled, null, { timeout: 20000 });
    const user = await page.textContent(".msg.user .body");
    assert.ok(user.includes("<img src=x"), "the user's markup is shown as text");
    assert.strictEqual(await page.$$eval("#log img, #log script", (n) => n.length), 0, "no element came from text");
    assert.strictEqual(await page.evaluate(() => window.pwned), undefined);
    const tokens = await page.$$(".msg.assistant .tok");
    assert.ok(tokens.length >= 3, `streamed tokens: ${tokens.length}`);
    /* the probability view with the mouse */
    await tokens[1].click();
    await page.waitForSelector("#probs:not([hidden])");
    const probs = await page.$$eval("#probs .cand span:last-child", (n) => n.map((x) => +x.textContent));
    assert.ok(probs.length >= 2 && probs.length <= 5, `candidates: ${probs.length}`);
    assert.ok(probs.every((p) => p >= 0 && p <= 1) && probs.reduce((a, b) => a + b, 0) <= 1.001);
    for (let i = 1; i < probs.length; i++) assert.ok(probs[i] <= probs[i - 1] + 1e-9);
    assert.strictEqual(await page.$$eval("#probs .cand.chosen", (n) => n.length), 1, "greedy: the chosen one is marked");
    await page.screenshot({ path: process.env.SHOT });
    await page.keyboard.press("Escape");
    assert.ok(await page.$eval("#probs", (p) => p.hidden));
    /* and with the keyboard: focus a token, Enter opens the view */
    await tokens[0].focus();
    await page.keyboard.press("Enter");
    assert.ok(!(await page.$eval("#probs", (p) => p.hidden)));
    /* multi-turn + stop: the answer arrives slowly (throttled network), the stop button ends it */
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: 3000, uploadThroughput: -1 });
    await page.fill("#max_tokens", "4000");
    await page.fill("#input", "second turn");
    await page.click("#send");
    await page.waitForFunction(() => document.querySelectorAll(".msg.assistant").length === 2 &&
      document.querySelectorAll(".msg.assistant")[1].textContent.length > 0, null, { timeout: 20000 });
    await page.click("#stop");
    await page.waitForFunction(() => !document.getElementById("send").disabled, null, { timeout: 10000 });
    assert.ok((await page.textContent(".msg.assistant:nth-of-type(4) .body")).endsWith("（已停止）"));
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    /* English labels, then a new chat empties the log */
    await page.selectOption("#lang", "en");
    assert.strictEqual(await page.textContent("#send"), "Send");
    await page.click("#new");
    assert.strictEqual(await page.$$eval(".msg", (n) => n.length), 0);
    assert.deepStrictEqual(errors, []);
    console.log(`browser: ${tokens.length} streamed tokens, ${probs.length} candidates shown, screenshot ${process.env.SHOT}`);
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
