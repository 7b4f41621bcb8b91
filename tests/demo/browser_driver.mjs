// Drives Debian's chromium with playwright-core: opens the demo in replay mode, waits for it
// to finish, writes the page's results (window.__edgefm) as JSON and saves a screenshot.
// usage: node browser_driver.mjs DEMO_DIR URL OUT_JSON OUT_PNG
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
import path from "node:path";

const [demoDir, url, outJson, outPng] = process.argv.slice(2);
const require = createRequire(path.join(demoDir, "package.json"));
const { chromium } = require("playwright-core");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const logs = [];
const external = [];
try {
  const page = await browser.newPage({ viewport: { width: 720, height: 900 } });
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
  page.on("request", (r) => { if (!r.url().startsWith(new URL(url).origin)) external.push(r.url()); });
  await page.goto(url);
  await page.waitForFunction(() => window.__edgefm && (window.__edgefm.done || window.__edgefm.error),
                             null, { timeout: 90000 });
  const state = await page.evaluate(() => ({ ...window.__edgefm,
    shown: Object.fromEntries(["hr", "gate", "windows", "skipped", "latency", "battery", "status"]
      .map((id) => [id, document.getElementById(id).textContent])) }));
  // after the first load the service worker must hold every file: reload offline
  const cached = await Promise.race([
    page.evaluate(async () => { await navigator.serviceWorker.ready; return (await caches.keys()).length; }),
    new Promise((r) => setTimeout(() => r(-1), 30000))]);
  await page.screenshot({ path: outPng, fullPage: true });
  let offline = null;
  try {
    await page.context().setOffline(true);
    await page.goto(url.replace("mode=replay", "mode=none"));
    await page.waitForFunction(() => window.__edgefm && (window.__edgefm.ready || window.__edgefm.error), null, { timeout: 30000 });
    offline = await page.evaluate(() => ({ ready: window.__edgefm.ready, error: window.__edgefm.error }));
  } catch (e) { offline = { ready: false, error: String(e) }; }
  writeFileSync(outJson, JSON.stringify({ state, logs, external, offline, cached }));
} finally {
  await browser.close();
}
