// @ts-check
/**
 * The Schedules page's fires in a real browser against a real server, open on loopback
 * without tokens: "Trigger now" puts the new task at the top of the schedule's fires without
 * a reload and its status turns completed there; a refused trigger says why beside the
 * button; an every-second schedule's own fires appear as they happen. With tokens, a viewer
 * sees the fires but no trigger button.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { generateToken, logIn, openBrowser, startServer } from "../lib/harness.js";

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;

before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

describe("the fires of schedules", () => {
  test("trigger now shows the new task at the top of the fires and it turns completed", async () => {
    const schedule = await server.api("POST", "/api/v1/schedules", {
      name: "yearly-report", cron: "0 0 1 1 *", task: { type: "echo", params: { report: "now" } },
    });
    const b = await openBrowser("schedule-trigger");
    try {
      await b.page.goto(`${server.ui}/schedules`);
      const fires = b.page.locator('tr[data-fires="yearly-report"]');
      await fires.locator("text=no fires yet").waitFor();
      await b.page.evaluate(() => { /** @type {any} */ (window).sameDocument = true; });
      await b.shot("no-fires");
      await fires.locator("button:text-is('Trigger now')").click();
      const manual = fires.locator('li[data-manual="true"]');
      await manual.waitFor();
      await manual.locator(".s-completed").waitFor({ timeout: 15_000 });
      const [fire] = (await server.api("GET", `/api/v1/schedules/${schedule.id}/fires`)).items;
      assert.equal(fire.manual, true);
      assert.equal(await manual.getAttribute("data-task"), fire.task_id);
      assert.match(await manual.locator("a").getAttribute("href") ?? "", new RegExp(`/ui/tasks/${fire.task_id}$`));
      assert.match(await manual.locator("time").getAttribute("title") ?? "", /UTC$/);
      assert.equal((await server.api("GET", `/api/v1/tasks/${fire.task_id}`)).status, "completed");
      assert.equal(await b.page.evaluate(() => /** @type {any} */ (window).sameDocument), true);
      const stored = await server.api("GET", `/api/v1/schedules/${schedule.id}`);
      assert.equal(stored.next_fire_at, schedule.next_fire_at, "a trigger does not move the next fire");
      await b.shot("triggered");
      assert.deepEqual(b.problems, []);
    } finally {
      await b.close();
    }
  });

  test("a refused trigger says why beside its button", async () => {
    const schedule = await server.api("POST", "/api/v1/schedules", {
      name: "short-lived", cron: "0 0 1 1 *", task: { type: "echo" },
    });
    const b = await openBrowser("schedule-refused");
    try {
      await b.page.goto(`${server.ui}/schedules`);
      const fires = b.page.locator('tr[data-fires="short-lived"]');
      await fires.locator("text=no fires yet").waitFor();
      await server.api("DELETE", `/api/v1/schedules/${schedule.id}`);
      await fires.locator("button:text-is('Trigger now')").click();
      const refusal = fires.locator(".fire-message .error");
      await refusal.waitFor();
      assert.equal(await refusal.textContent(), "Schedule not found");
      await b.shot("refused");
    } finally {
      await b.close();
    }
  });

  test("an every-second schedule's fires appear on their own, each completing", async () => {
    const schedule = await server.api("POST", "/api/v1/schedules", {
      name: "ticking", cron: "* * * * * *", task: { type: "echo", params: { tick: true } },
    });
    const b = await openBrowser("schedule-fires");
    try {
      await b.page.goto(`${server.ui}/schedules`);
      const scheduled = b.page.locator('tr[data-fires="ticking"] li[data-manual="false"]');
      await scheduled.locator(".s-completed").first().waitFor({ timeout: 15_000 });
      await server.api("PATCH", `/api/v1/schedules/${schedule.id}`, { enabled: false });
      const listed = (await server.api("GET", `/api/v1/schedules/${schedule.id}/fires`)).items;
      assert.ok(listed.length >= 1);
      assert.ok(listed.every((/** @type {any} */ f) => f.manual === false));
      await b.shot("scheduled");
      assert.deepEqual(b.problems, []);
    } finally {
      await b.close();
    }
  });
});

describe("the fires of schedules, for a viewer", () => {
  test("a viewer sees a schedule's fires and no trigger button", async () => {
    const admin = generateToken();
    const guarded = await startServer({ adminToken: admin });
    const b = await openBrowser("schedule-viewer");
    try {
      const viewer = (await guarded.api("POST", "/api/v1/tokens", { name: "watcher", role: "viewer" })).token;
      const schedule = await guarded.api("POST", "/api/v1/schedules", {
        name: "watched", cron: "0 0 1 1 *", task: { type: "echo" },
      });
      const task = await guarded.api("POST", `/api/v1/schedules/${schedule.id}/trigger`);
      await logIn(b.page, guarded, viewer);
      await b.page.goto(`${guarded.ui}/schedules`);
      const fires = b.page.locator('tr[data-fires="watched"]');
      await fires.locator(`li[data-task="${task.id}"]`).waitFor();
      assert.equal(await b.page.locator("button:text-is('Trigger now')").count(), 0);
      await b.shot("viewer");
      assert.deepEqual(b.problems, []);
    } finally {
      await b.close();
      await guarded.stop();
    }
  });
});
