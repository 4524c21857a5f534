// @ts-check
/**
 * What every dashboard test stands on: a real `seedcore serve` (embedded SQLite in a
 * temporary folder, on a free port, optionally with a bootstrap admin token), headless
 * Chromium driven through Playwright, API calls beside the browser, and screenshots under
 * `target/ui-screenshots/`.
 *
 * Settings from the environment: SEEDCORE_BIN (default target/debug/seedcore of the
 * repository), SEEDCORE_CHROMIUM (default /usr/bin/chromium).
 */

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BIN = process.env.SEEDCORE_BIN || join(ROOT, "target", "debug", "seedcore");
const CHROMIUM = process.env.SEEDCORE_CHROMIUM || "/usr/bin/chromium";
const SHOTS = join(ROOT, "target", "ui-screenshots");
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** A port nobody listens on right now. */
async function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.on("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => done(port));
    });
  });
}

/** A new token from `seedcore token generate`. */
export function generateToken() {
  return execFileSync(BIN, ["token", "generate"], { encoding: "utf8" }).trim();
}

/**
 * Starts `seedcore serve` and waits until it answers `/health`.
 * @param {{env?: Record<string, string>, adminToken?: string}} [options]
 */
export async function startServer(options = {}) {
  const dir = mkdtempSync(join(tmpdir(), "seedcore-ui-"));
  const port = await freePort();
  const env = {
    ...process.env,
    SEEDCORE_DATA_DIR: dir,
    HOST: "127.0.0.1",
    PORT: String(port),
    LOG_LEVEL: "WARNING",
    SEEDCORE_POLL_INTERVAL_MS: "100",
    ...(options.adminToken ? { SEEDCORE_BOOTSTRAP_TOKEN: options.adminToken } : {}),
    ...options.env,
  };
  delete env.DATABASE_URL;
  delete env.PG_DSN;
  const child = spawn(BIN, ["serve"], { env, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr?.on("data", (chunk) => { log = (log + chunk).slice(-4000); });
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`seedcore serve exited: ${log}`);
    try {
      if ((await fetch(`${origin}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`seedcore serve did not answer within 30 s: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const base = options.env?.SEEDCORE_BASE_PATH ?? "";
  return {
    origin,
    /** The API at this server, as a client with `token` would call it. */
    async api(method, path, body, token = options.adminToken) {
      const headers = { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) };
      const response = await fetch(origin + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await response.text();
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
      return text ? JSON.parse(text) : null;
    },
    ui: `${origin}/ui`,
    base,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => { if (child.exitCode !== null) r(null); else child.once("exit", r); });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Headless Chromium with one page at 1280×800; `shot(name)` saves a screenshot. */
export async function openBrowser(testName) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (err) => problems.push(err.message));
  // Failed requests go to the test's output, where a failure's cause is looked for.
  page.on("requestfailed", (r) => {
    if (!r.url().includes("/api/v1/events")) console.error(`${testName}: ${r.method()} ${r.url()} failed: ${r.failure()?.errorText}`);
  });
  page.on("console", (m) => {
    if (m.type() === "error") console.error(`${testName}: console: ${m.text()}`);
  });
  mkdirSync(SHOTS, { recursive: true });
  let n = 0;
  return {
    browser, context, page, problems,
    async shot(name) {
      n += 1;
      await page.screenshot({ path: join(SHOTS, `${testName}-${String(n).padStart(2, "0")}-${name}.png`), fullPage: true });
    },
    /** Saves the page as it was left (the last word on a failure), then closes the browser. */
    async close() {
      await this.shot("last").catch(() => {});
      const started = await page.evaluate(() => !document.getElementById("boot") || document.querySelectorAll("#nav a").length > 0)
        .catch(() => true);
      if (!started) {
        const loaded = await page.evaluate(() => performance.getEntriesByType("resource")
          .map((e) => `${e.name} ${Math.round(e.duration)} ms`)).catch(() => []);
        console.error(`${testName}: the page never started; resources loaded: ${loaded.join(", ")}`);
      }
      await browser.close();
    },
  };
}

/** Logs the page in with `token` through the login form. */
export async function logIn(page, server, token) {
  await page.goto(`${server.ui}/`);
  await page.waitForURL(/\/ui\/login$/);
  await page.fill("#token", token);
  await page.click("button[type=submit]");
  await page.waitForSelector("#nav a");
}
