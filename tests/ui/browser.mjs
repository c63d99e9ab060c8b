// The admin UI in a real browser: Debian's Chromium driven by playwright-core.
// Run by crates/gatehouse/tests/ui_browser.rs, which starts Gatehouse in front of the
// mock provider and passes: GATEHOUSE_URL, GATEHOUSE_MASTER, SCREENSHOTS (a directory),
// GATEHOUSE_NPM_PREFIX (where scripts/install-peers put playwright-core).
// Exits non-zero with the failed step on the first failure.
import { createRequire } from "node:module";
import assert from "node:assert/strict";
import path from "node:path";

const require = createRequire(import.meta.url);
const { chromium } = require(path.join(process.env.GATEHOUSE_NPM_PREFIX, "node_modules", "playwright-core"));
const base = process.env.GATEHOUSE_URL;
const master = process.env.GATEHOUSE_MASTER;
const shots = process.env.SCREENSHOTS;

let step = "start";
const log = (s) => { step = s; console.log(`step: ${s}`); };

async function eventually(what, fn, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try { return await fn(); } catch (e) {
      if (Date.now() > deadline) throw new Error(`${what}: ${e.message}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: "light" });
  const page = await context.newPage();
  const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

  log("unauthenticated /ui redirects to the login page");
  await page.goto(`${base}/ui`);
  assert.match(page.url(), /\/ui\/login$/);
  await shot("login");

  log("a wrong key is refused");
  await page.fill("input[name=password]", "sk-not-the-master-key");
  await page.click("button[type=submit]");
  await page.waitForSelector(".notice.error");
  assert.match(await page.textContent(".notice.error"), /Wrong key/);
  assert.match(page.url(), /\/ui\/login$/);
  assert.ok(!(await context.cookies()).some((c) => c.name === "gatehouse_ui"), "no session cookie");

  log("the master key signs in with an HttpOnly SameSite=Strict cookie");
  await page.fill("input[name=password]", master);
  await page.click("button[type=submit]");
  await page.waitForSelector("h1:text('Overview')");
  const cookie = (await context.cookies()).find((c) => c.name === "gatehouse_ui");
  assert.ok(cookie && cookie.httpOnly && cookie.sameSite === "Strict", JSON.stringify(cookie));
  assert.equal(await page.evaluate(() => document.cookie.includes("gatehouse_ui")), false);

  log("create a key with a model scope, a limit and a budget");
  await page.goto(`${base}/ui/keys`);
  await page.click("details.create summary");
  await page.fill("input[name=key_alias]", "browser-key");
  await page.check("input[name=model][value=local-llm]");
  await page.fill("input[name=rpm_limit]", "100");
  await page.fill("input[name=max_budget]", "5");
  await page.click("details.create button[type=submit]");
  await page.waitForSelector("[data-new-key]");
  const key = (await page.textContent("#new-key")).trim();
  assert.match(key, /^sk-/);
  assert.ok((await page.textContent("table")).includes("browser-key"), "listed");

  log("the key is never rendered again");
  await page.goto(`${base}/ui/keys`);
  const html = await page.content();
  assert.ok(!html.includes(key), "key shown again");
  assert.ok(html.includes("browser-key"));

  log("a form without the CSRF token is refused");
  const forged = await context.request.post(`${base}/ui/keys`, { form: { key_alias: "forged" } });
  assert.equal(forged.status(), 403);

  log("requests with the new key");
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "local-llm", messages: [{ role: "user", content: `hello ${i}` }] }),
    });
    assert.equal(r.status, 200, await r.text());
  }

  log("MCP servers list the ready server");
  await eventually("server ev ready", async () => {
    await page.goto(`${base}/ui/mcp`);
    assert.ok((await page.textContent("table")).includes("ready"));
  });
  await shot("mcp");

  log("try a tool from its generated form");
  await page.click("a:text('ev')");
  const echo = page.locator("details[data-tool=echo]");
  await echo.locator("summary").first().click();
  await echo.locator("input[name='arg.message']").fill("hello from the browser");
  await echo.locator("button[type=submit]").click();
  await page.waitForSelector("[data-result=ok]");
  assert.match(await page.textContent("[data-result=ok] pre.text"), /Echo: hello from the browser/);
  await shot("mcp-try");

  log("the spend chart shows the requests");
  await eventually("spend bars", async () => {
    await page.goto(`${base}/ui`);
    assert.ok((await page.locator("svg[data-chart=spend] rect.bar").count()) > 0, "no spend bars yet");
    assert.ok((await page.locator("svg[data-chart=requests] rect.bar").count()) > 0);
    assert.notEqual((await page.textContent("[data-card=spend-today] .value")).trim(), "$0.00");
  });
  await shot("overview");

  log("the key's spend shows on the keys page");
  await eventually("key spend", async () => {
    await page.goto(`${base}/ui/keys`);
    const row = await page.locator("tr", { hasText: "browser-key" }).textContent();
    assert.ok(!row.includes("$0.00 / $5.00"), row);
  });
  await shot("keys");

  log("spend logs list the key's requests; filters narrow them");
  // Spend rows are written off the request path, in batches: wait for them.
  await eventually("spend rows", async () => {
    await page.goto(`${base}/ui/spend?key=browser-key`);
    assert.equal(await page.locator("tbody tr").count(), 3);
  });
  await shot("spend");
  await page.goto(`${base}/ui/spend?key=browser-key&status=errors`);
  assert.equal(await page.locator("tbody tr").count(), 0);

  log("the tool call is in the audit");
  await eventually("audit row", async () => {
    await page.goto(`${base}/ui/audit?server=ev&tool=echo`);
    assert.ok((await page.locator("tbody tr").count()) >= 1);
  });
  await shot("audit");

  log("models and config pages; no secret in the config");
  await page.goto(`${base}/ui/models`);
  assert.ok((await page.textContent("main")).includes("local-llm"));
  await shot("models");
  await page.goto(`${base}/ui/config`);
  const config = await page.textContent("pre.config");
  assert.ok(config.includes("redacted") && !config.includes(master) && !config.includes("sk-up"));
  await shot("config");

  log("block the key from the UI: it is refused at once");
  await page.goto(`${base}/ui/keys`);
  await page.locator("tr", { hasText: "browser-key" }).locator("button:text('Block')").click();
  await page.waitForSelector(".notice.ok");
  const blocked = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "local-llm", messages: [{ role: "user", content: "again" }] }),
  });
  assert.equal(blocked.status, 401);

  log("log out");
  await page.click("form.logout button");
  await page.waitForURL(/\/ui\/login$/);
  await page.goto(`${base}/ui/keys`);
  assert.match(page.url(), /\/ui\/login$/);
  console.log("ui browser test: all steps passed");
} catch (e) {
  console.error(`FAILED at step "${step}": ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
