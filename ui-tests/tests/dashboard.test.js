// @ts-check
/**
 * The dashboard in a real browser against a real server, open on loopback without tokens:
 * the overview's counts, a task created and followed to completion without a reload, a
 * queued task cancelled, a thousand tasks cancelled through "all matching", a queue paused
 * and resumed, a workflow's graph completing node by node, a fact's whole life, a schedule made with its
 * cron checked as it is typed, paused and resumed.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openBrowser, startServer } from "../lib/harness.js";

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;

before(async () => {
  server = await startServer({ env: { SEEDCORE_ACTION_BATCH_SIZE: "100" } });
});
after(async () => {
  await server?.stop();
});

/** Polls `check` until it returns a truthy value, up to `ms`. */
async function eventually(check, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("the dashboard, open without tokens", () => {
  test("the overview shows every queue with its real counts and the paused one as paused", async () => {
    await server.api("POST", "/api/v1/queues/held/pause");
    for (let i = 0; i < 3; i++) await server.api("POST", "/api/v1/tasks", { type: "echo", queue: "counted", run_immediately: true });
    for (let i = 0; i < 2; i++) await server.api("POST", "/api/v1/tasks", { type: "echo", queue: "held", run_immediately: true });
    await eventually(async () => (await server.api("GET", "/api/v1/tasks?status=completed")).total >= 3);
    const b = await openBrowser("overview");
    try {
      await b.page.goto(`${server.ui}/`);
      const completed = b.page.locator('tr[data-queue="counted"] td[data-status="completed"]');
      await completed.waitFor();
      assert.equal(await completed.textContent(), "3");
      assert.equal(await b.page.locator('tr[data-queue="held"] td[data-status="queued"]').textContent(), "2");
      assert.equal(await b.page.locator('tr[data-queue="held"] .paused').textContent(), "paused");
      assert.match(await b.page.locator('tr[data-queue="held"] td:last-child').textContent() ?? "", /\d+ s/);
      await b.shot("counts");
      // The keyboard reaches the pages: past the skip link and the brand, the second page.
      await b.page.keyboard.press("Tab");
      await b.page.keyboard.press("Tab");
      await b.page.keyboard.press("Tab");
      await b.page.keyboard.press("Tab");
      await b.page.keyboard.press("Enter");
      await b.page.waitForURL(/\/ui\/tasks$/);
      await b.page.locator("tr[data-task]").first().waitFor();
      // At phone width nothing spills sideways out of the page; wide tables scroll in place.
      await b.page.setViewportSize({ width: 390, height: 844 });
      await b.page.goto(`${server.ui}/`);
      await b.page.locator('tr[data-queue="held"]').waitFor();
      assert.equal(await b.page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true);
      await b.shot("phone");
      // Light and dark follow the system's preference.
      const background = () => b.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      const light = await background();
      await b.page.emulateMedia({ colorScheme: "dark" });
      assert.notEqual(await background(), light);
      await b.shot("dark");
      assert.deepEqual(b.problems, []);
    } finally {
      await b.close();
    }
  });

  test("a task created from the dashboard completes on screen without a reload", async () => {
    const b = await openBrowser("create");
    try {
      await b.page.goto(`${server.ui}/tasks`);
      await b.page.evaluate(() => { /** @type {any} */ (window).sameDocument = true; });
      await b.page.click("summary");
      await b.page.fill("#n-queue", "no spaces allowed");
      await b.page.click("text=Create task");
      const refusal = b.page.locator("details .error");
      await refusal.waitFor();
      assert.match(await refusal.textContent() ?? "", /queue/);
      await b.shot("refused");
      await b.page.fill("#n-queue", "");
      await b.page.fill("#n-type", "sleep");
      await b.page.fill("#n-params", '{"seconds": 1}');
      await b.shot("form");
      await b.page.click("text=Create task");
      await b.page.locator('#task-status[data-status="running"], #task-status[data-status="queued"]').waitFor();
      await b.shot("waiting");
      await b.page.locator('#task-status[data-status="completed"]').waitFor({ timeout: 15_000 });
      assert.equal(await b.page.evaluate(() => /** @type {any} */ (window).sameDocument), true);
      assert.match(await b.page.locator("ol.timeline").textContent() ?? "", /completed/);
      await b.shot("completed");
      const first = b.page.url();
      await b.page.click("text=Retry with edited parameters");
      await b.page.fill("#retry-params", '{"seconds": 0.2}');
      await b.page.click("text=Run with these parameters");
      await b.page.waitForURL((url) => url.href !== first);
      await b.page.locator('#task-status[data-status="completed"]').waitFor({ timeout: 15_000 });
      assert.match(await b.page.locator("pre").first().textContent() ?? "", /"seconds": 0.2/);
      assert.equal(await b.page.evaluate(() => /** @type {any} */ (window).sameDocument), true);
      await b.shot("retried");
    } finally {
      await b.close();
    }
  });

  test("a queued task is cancelled from its page", async () => {
    await server.api("POST", "/api/v1/queues/held/pause");
    const task = await server.api("POST", "/api/v1/tasks", { type: "echo", queue: "held", run_immediately: true });
    const b = await openBrowser("cancel");
    try {
      await b.page.goto(`${server.ui}/tasks/${task.id}`);
      await b.page.locator('#task-status[data-status="queued"]').waitFor();
      await b.shot("queued");
      await b.page.click("button:text-is('Cancel')");
      await b.page.locator('#task-status[data-status="cancelled"]').waitFor();
      await b.shot("cancelled");
      assert.equal((await server.api("GET", `/api/v1/tasks/${task.id}`)).status, "cancelled");
    } finally {
      await b.close();
    }
  });

  test("a thousand tasks matching a filter are cancelled through all matching, with progress", async () => {
    await server.api("POST", "/api/v1/queues/bulk/pause");
    const tasks = Array.from({ length: 1000 }, (_, i) => ({ type: "bulkjob", queue: "bulk", params: { i }, run_immediately: true }));
    await server.api("POST", "/api/v1/tasks/bulk", { tasks });
    const other = await server.api("POST", "/api/v1/tasks", { type: "otherjob", queue: "bulk", run_immediately: true });
    const b = await openBrowser("bulk");
    try {
      await b.page.goto(`${server.ui}/tasks?type=bulkjob&status=queued`);
      await b.page.locator("tr[data-task]").first().waitFor();
      await b.page.check('input[aria-label="Select every task on this page"]');
      await b.page.click("text=Select all 1,000 matching");
      await b.page.click('button[data-action="cancel"]');
      const dialog = b.page.locator("dialog");
      assert.match(await dialog.textContent() ?? "", /all 1,000 matching tasks/);
      await b.shot("confirm");
      await dialog.locator("button[value=ok]").click();
      await b.page.locator("progress").waitFor();
      await b.shot("progress");
      await b.page.locator("text=1,000 cancelled, 0 skipped.").waitFor({ timeout: 30_000 });
      assert.equal(await b.page.locator("progress").evaluate((p) => /** @type {HTMLProgressElement} */ (p).value), 1000);
      await b.shot("done");
      assert.equal((await server.api("GET", "/api/v1/tasks?type=bulkjob&status=cancelled&limit=1")).total, 1000);
      assert.equal((await server.api("GET", `/api/v1/tasks/${other.id}`)).status, "queued");
    } finally {
      await b.close();
    }
  });

  test("a queue paused from the dashboard stops claims and shows it until resumed", async () => {
    await server.api("POST", "/api/v1/tasks", { type: "noop", queue: "switch", run_immediately: true });
    const b = await openBrowser("pause");
    try {
      await b.page.goto(`${server.ui}/queues`);
      const row = b.page.locator('tr[data-queue="switch"]');
      await row.locator("button:text-is('Pause')").click();
      await row.locator(".paused").waitFor();
      await b.shot("paused");
      const task = await server.api("POST", "/api/v1/tasks", { type: "noop", queue: "switch", run_immediately: true });
      // Workers look every 100 ms here: a second unclaimed is ten looks that passed it by.
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal((await server.api("GET", `/api/v1/tasks/${task.id}`)).status, "queued");
      await row.locator("button:text-is('Resume')").click();
      await eventually(async () => (await server.api("GET", `/api/v1/tasks/${task.id}`)).status === "completed");
      await row.locator("button:text-is('Pause')").waitFor();
      await b.shot("resumed");
    } finally {
      await b.close();
    }
  });

  test("a workflow's graph turns complete node by node", async () => {
    // The browser opens first, and the middle step lasts long enough that the page is shown
    // before the last step can finish, however slowly a loaded machine opens it.
    const b = await openBrowser("workflow");
    const created = await server.api("POST", "/api/v1/workflows", { name: "nightly", tasks: [
      { key: "extract", type: "sleep", params: { seconds: 0.5 } },
      { key: "clean", type: "sleep", params: { seconds: 4 }, depends_on: ["extract"] },
      { key: "report", type: "echo", depends_on: ["clean"] },
    ] });
    try {
      await b.page.goto(`${server.ui}/workflows/${created.id}`);
      const node = (/** @type {string} */ key) => b.page.locator(`g.node[data-key="${key}"]`);
      await node("report").waitFor();
      await b.shot("started");
      await b.page.locator('g.node[data-key="extract"][data-status="completed"]').waitFor();
      assert.notEqual(await node("report").getAttribute("data-status"), "completed");
      await b.shot("first-done");
      await b.page.locator('#workflow-status[data-status="completed"]').waitFor({ timeout: 15_000 });
      for (const key of ["extract", "clean", "report"]) assert.equal(await node(key).getAttribute("data-status"), "completed");
      await b.shot("completed");
      await node("report").click();
      await b.page.locator('#task-status[data-status="completed"]').waitFor();
    } finally {
      await b.close();
    }
  });

  test("a fact is created, found by full text, edited and deleted", async () => {
    const b = await openBrowser("facts");
    try {
      await b.page.goto(`${server.ui}/facts`);
      await b.page.click("summary:text-is('New fact')");
      await b.page.fill("#c-text", "The Moon orbits the Earth");
      await b.page.fill("#c-tags", "astro, moon");
      await b.page.click("text=Store fact");
      await b.page.locator("text=Fact stored.").waitFor();
      await b.page.fill("#s-q", "orbiting moons");
      await b.page.selectOption("#s-mode", "text");
      await b.page.click("button:text-is('Search')");
      const row = b.page.locator("tr[data-fact]");
      await row.waitFor();
      assert.equal(await row.count(), 1);
      assert.match(await row.textContent() ?? "", /The Moon orbits the Earth/);
      await b.shot("found");
      const id = await row.getAttribute("data-fact");
      await row.locator("button:text-is('Edit')").click();
      await b.page.fill('tr[data-editing] textarea[name="text"]', "The Moon orbits the Earth once a month");
      await b.page.click("button:text-is('Save')");
      await b.page.locator("tr[data-fact] >> text=once a month").waitFor();
      assert.equal((await server.api("GET", `/api/v1/facts/${id}`)).text, "The Moon orbits the Earth once a month");
      await b.shot("edited");
      await b.page.click("tr[data-fact] button:text-is('Delete')");
      await b.page.locator("dialog button[value=ok]").click();
      await b.page.locator(".empty").waitFor();
      await b.shot("deleted");
      await assert.rejects(server.api("GET", `/api/v1/facts/${id}`), /404/);
    } finally {
      await b.close();
    }
  });

  test("a schedule is made with its cron checked as it is typed, then paused and resumed", async () => {
    const b = await openBrowser("schedule");
    try {
      await b.page.goto(`${server.ui}/schedules`);
      await b.page.locator(".empty").waitFor();
      await b.page.click("button:text-is('New schedule')");
      await b.page.fill("#e-name", "every-five");
      await b.page.fill("#e-cron", "61 * * * *");
      await b.page.locator("#cron-preview .error").waitFor();
      assert.match(await b.page.locator("#cron-preview").textContent() ?? "", /cron/i);
      await b.shot("refused");
      await b.page.fill("#e-cron", "*/5 * * * *");
      await b.page.locator("#cron-preview li >> nth=4").waitFor();
      assert.equal(await b.page.locator("#cron-preview li").count(), 5);
      await b.shot("previewed");
      await b.page.click("button:text-is('Create schedule')");
      const row = b.page.locator('tr[data-schedule="every-five"]');
      await row.locator("text=active").waitFor();
      await row.locator("button:text-is('Pause')").click();
      await row.locator(".paused").waitFor();
      await b.shot("paused");
      const [stored] = (await server.api("GET", "/api/v1/schedules")).items;
      assert.equal(stored.enabled, false);
      assert.equal(stored.cron, "*/5 * * * *");
      await row.locator("button:text-is('Resume')").click();
      await row.locator("text=active").waitFor();
      assert.equal((await server.api("GET", `/api/v1/schedules/${stored.id}`)).enabled, true);
    } finally {
      await b.close();
    }
  });

  test("paused live updates hold the page still until resumed", async () => {
    const b = await openBrowser("live");
    try {
      await b.page.goto(`${server.ui}/tasks?type=livecheck`);
      await b.page.locator(".empty").waitFor();
      await b.page.click("#live");
      assert.equal(await b.page.locator("#live").getAttribute("aria-pressed"), "true");
      const task = await server.api("POST", "/api/v1/tasks", { type: "livecheck", queue: "held", run_immediately: true });
      // The list follows changes within a second when live: two seconds is well past that.
      await new Promise((r) => setTimeout(r, 2000));
      assert.equal(await b.page.locator("tr[data-task]").count(), 0);
      await b.shot("paused");
      await b.page.click("#live");
      await b.page.locator(`tr[data-task="${task.id}"]`).waitFor({ timeout: 5000 });
      await b.shot("resumed");
    } finally {
      await b.close();
    }
  });

  test("the workers page shows this server's worker with the task it runs", async () => {
    const task = await server.api("POST", "/api/v1/tasks", { type: "sleep", params: { seconds: 3 }, run_immediately: true });
    await eventually(async () => (await server.api("GET", `/api/v1/tasks/${task.id}`)).status === "running");
    const b = await openBrowser("workers");
    try {
      await b.page.goto(`${server.ui}/workers`);
      const row = b.page.locator("tr[data-worker]", { hasText: task.id.slice(0, 8) });
      await row.waitFor();
      assert.match(await row.textContent() ?? "", /active/);
      await b.shot("running");
    } finally {
      await b.close();
    }
  });
});
