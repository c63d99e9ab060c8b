// Open WebUI 0.12.4 in Debian's Chromium, in front of Gatehouse (run by
// scripts/e2e-open-webui, which starts the mock, Gatehouse and Open WebUI and passes
// OPEN_WEBUI_URL, GATEHOUSE_NPM_PREFIX and SHOTS). Exits non-zero naming the failed step.
//
// The mock LLM echoes (`Echo: <text>`) and turns a `CALL <tool> <json>` line into a call
// of that tool when the tool is offered; after a tool result it answers `Tool said: …`.
import { createRequire } from "node:module";
import assert from "node:assert/strict";
import path from "node:path";

const require = createRequire(import.meta.url);
const { chromium } = require(path.join(process.env.GATEHOUSE_NPM_PREFIX, "node_modules", "playwright-core"));
const base = process.env.OPEN_WEBUI_URL;
const shots = process.env.SHOTS;

let step = "start";
const log = (s) => { step = s; console.log(`step: ${s}`); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let page;
const shot = (name) => page.screenshot({ path: path.join(shots, `open-webui-${name}.png`) });

/** The text of the last assistant answer once it contains `want` (the answer streams). */
async function answer(want, ms = 60000) {
  const last = page.locator("#response-content-container").last();
  await last.filter({ hasText: want }).waitFor({ timeout: ms });
  return (await last.innerText()).trim();
}

async function newChat(model) {
  await page.goto(`${base}/`);
  await page.click("#model-selector-model-button");
  await page.getByRole("button", { name: model, exact: false }).or(page.locator(`text=${model}`)).first().click();
  await page.waitForFunction(
    (m) => document.querySelector("#model-selector-model-button")?.innerText.includes(m),
    model,
  );
}

async function send(text) {
  await page.click("#chat-input");
  await page.keyboard.insertText(text);
  await page.keyboard.press("Enter");
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: "light" });
  page = await context.newPage();

  log("create the admin account (the first sign-up is the admin)");
  await page.goto(`${base}/auth`);
  await page.click("button:has-text('Get started')");
  await page.fill("#name", "Gate Keeper");
  await page.fill("#email", "admin@example.com");
  await page.fill("#password", "e2e-password-123");
  await shot("signup");
  await page.click("button:has-text('Create Admin Account')");
  await page.waitForSelector("#chat-input", { timeout: 30000 });
  // The release-notes dialog of a fresh install.
  await page.click("button:has-text(\"Okay, Let's Go!\")", { timeout: 5000 }).catch(() => {});

  log("the model list is Gatehouse's /v1/models for the key");
  await page.click("#model-selector-model-button");
  await page.locator("text=gatehouse-chat").first().waitFor();
  await page.locator("text=gatehouse-tools").first().waitFor();
  await shot("models");
  await page.keyboard.press("Escape");

  log("pick a Gatehouse model and chat");
  await newChat("gatehouse-chat");
  await send("hello through gatehouse");
  assert.equal(await answer("Echo: hello through gatehouse"), "Echo: hello through gatehouse");
  await shot("chat");

  log("a model with model_info.mcp_servers answers with the tool's output (Gatehouse runs it)");
  await newChat("gatehouse-tools");
  await send('CALL ev-echo {"message": "run by gatehouse"}');
  assert.match(await answer("Tool said:"), /Tool said: Echo: run by gatehouse/);
  await shot("gateway-tool");

  log("Open WebUI's own MCP connection to Gatehouse /mcp lists the tools");
  // What Admin settings → External Tools → "Verify connection" runs: Open WebUI's MCP
  // client connects to the stored connection and lists its tools.
  const listed = await page.evaluate(async () => {
    const auth = { authorization: `Bearer ${localStorage.token}`, "content-type": "application/json" };
    const conns = await (await fetch("/api/v1/configs/tool_servers", { headers: auth })).json();
    const r = await fetch("/api/v1/configs/tool_servers/verify", {
      method: "POST", headers: auth, body: JSON.stringify(conns.TOOL_SERVER_CONNECTIONS[0]),
    });
    return { status: r.status, body: await r.json() };
  });
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  const names = listed.body.specs.map((s) => s.name);
  assert.ok(names.includes("ev-echo") && names.includes("ev-get-sum"), names.join(","));
  console.log(`  Open WebUI listed ${names.length} tools from Gatehouse /mcp: ${names.join(", ")}`);

  await newChat("gatehouse-chat");
  await page.click("#integration-menu-button");
  await page.click("[role=menuitem]:has-text('Tools')");
  const toggle = page.locator("[role=menuitemcheckbox]:has-text('Gatehouse')");
  await toggle.waitFor({ timeout: 20000 });
  await toggle.click();
  await shot("integrations");
  await page.keyboard.press("Escape");

  log("and calls one: the model asks, Open WebUI calls Gatehouse's /mcp, the result comes back");
  await send('CALL gatehouse_ev-get-sum {"a": 20, "b": 22}');
  assert.match(await answer("Tool said:"), /Tool said:.*42/s);
  await shot("mcp-tool-server");

  console.log("open-webui e2e: all steps passed");
} catch (e) {
  console.error(`FAILED at step: ${step}\n${e.stack || e}`);
  if (page) await shot("failure").catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
}
