// @ts-check
/**
 * The dashboard with tokens in use: a visitor logs in on the login page, a viewer sees no
 * control its token lacks, a change forged without the session's CSRF token is refused, and
 * logging out ends the session.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { generateToken, logIn, openBrowser, startServer } from "../lib/harness.js";

const admin = generateToken();
/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
let viewer = "";
/** @type {any} */
let queued;

before(async () => {
  server = await startServer({ adminToken: admin });
  viewer = (await server.api("POST", "/api/v1/tokens", { name: "watcher", role: "viewer" })).token;
  await server.api("POST", "/api/v1/queues/held/pause");
  queued = await server.api("POST", "/api/v1/tasks", { type: "echo", queue: "held", run_immediately: true });
});
after(async () => {
  await server?.stop();
});

describe("the dashboard with tokens", () => {
  test("a viewer logs in and sees no cancel button nor any other change it may not make", async () => {
    const b = await openBrowser("viewer");
    try {
      await b.page.goto(`${server.ui}/tasks`);
      await b.page.waitForURL(/\/ui\/login$/);
      await b.page.fill("#token", "sc_000000000000_not-a-token");
      await b.page.click("button[type=submit]");
      assert.equal(await b.page.locator("p.error").textContent(), "Invalid token");
      await b.shot("refused");
      await logIn(b.page, server, viewer);
      assert.match(await b.page.locator("#who").textContent() ?? "", /watcher/);
      await b.page.goto(`${server.ui}/tasks/${queued.id}`);
      await b.page.locator('#task-status[data-status="queued"]').waitFor();
      await b.shot("task");
      assert.equal(await b.page.locator("button:text-is('Cancel')").count(), 0);
      assert.equal(await b.page.locator("button:text-is('Clone as new task')").count(), 0);
      await b.page.click("nav >> text=Tasks");
      await b.page.locator(`tr[data-task="${queued.id}"]`).waitFor();
      assert.equal(await b.page.locator("input[type=checkbox]").count(), 0);
      assert.equal(await b.page.locator("button[data-action]").count(), 0);
      assert.equal(await b.page.locator("summary:text-is('New task')").count(), 0);
      await b.page.click("nav >> text=Queues");
      await b.page.locator('tr[data-queue="held"]').waitFor();
      assert.equal(await b.page.locator("button:text-is('Resume')").count(), 0);
      await b.shot("queues");
      assert.deepEqual(b.problems, []);
    } finally {
      await b.close();
    }
  });

  test("a change forged without the CSRF token is refused, the page's own goes through", async () => {
    const b = await openBrowser("csrf");
    try {
      await logIn(b.page, server, admin);
      const [session] = (await b.context.cookies()).filter((c) => c.name === "seedcore_session");
      assert.equal(session.httpOnly, true);
      assert.equal(session.sameSite, "Strict");
      assert.equal(await b.page.evaluate(() => document.cookie), "");
      const path = `/api/v1/tasks/${queued.id}/cancel`;
      const forged = await b.page.evaluate(async (p) => {
        const r = await fetch(p, { method: "POST" });
        return { status: r.status, body: await r.json() };
      }, path);
      assert.equal(forged.status, 403);
      assert.match(forged.body.detail, /CSRF/);
      assert.equal((await server.api("GET", `/api/v1/tasks/${queued.id}`)).status, "queued");
      await b.page.goto(`${server.ui}/tasks/${queued.id}`);
      await b.page.click("button:text-is('Cancel')");
      await b.page.locator('#task-status[data-status="cancelled"]').waitFor();
      await b.shot("cancelled");
      assert.equal((await server.api("GET", `/api/v1/tasks/${queued.id}`)).status, "cancelled");
    } finally {
      await b.close();
    }
  });

  test("logging out ends the session and leads back to the login page", async () => {
    const b = await openBrowser("logout");
    try {
      await logIn(b.page, server, admin);
      await b.page.click("text=Log out");
      await b.page.waitForURL(/\/ui\/login$/);
      await b.shot("out");
      const after = await b.page.evaluate(async () => (await fetch("/api/v1/tasks")).status);
      assert.equal(after, 401);
      const cookies = await b.context.cookies();
      assert.equal(cookies.filter((c) => c.name === "seedcore_session").length, 0);
    } finally {
      await b.close();
    }
  });
});
