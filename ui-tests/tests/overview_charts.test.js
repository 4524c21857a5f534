// @ts-check
/**
 * The overview's charts of the last hour in a real browser against a real server: an empty
 * state before anything finished, then the real counts of tasks the server ran (the failed
 * one in the failures chart), exact values on hover and from the keyboard, at phone width
 * and in dark mode.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openBrowser, startServer } from "../lib/harness.js";

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;

before(async () => {
  server = await startServer();
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

describe("the overview's charts", () => {
  test("before any task finished they say so, then show the real counts without a reload", async () => {
    const b = await openBrowser("charts");
    try {
      await b.page.goto(`${server.ui}/`);
      await b.page.getByText("No task finished in the last hour").waitFor();
      await b.shot("empty");

      for (let i = 0; i < 3; i++) await server.api("POST", "/api/v1/tasks", { type: "echo", run_immediately: true });
      await server.api("POST", "/api/v1/tasks", { type: "fail", max_attempts: 1, run_immediately: true });
      await eventually(async () => (await server.api("GET", "/api/v1/tasks?status=failed")).total === 1
        && (await server.api("GET", "/api/v1/tasks?status=completed")).total === 3);

      const completed = b.page.locator('[data-chart="completed"] svg');
      await eventually(async () => (await completed.count()) === 1
        && (await completed.getAttribute("aria-label")) === "Completed per minute, last hour: 3 in all");
      const failed = b.page.locator('[data-chart="failed"] svg');
      assert.equal(await failed.getAttribute("aria-label"), "Failed per minute, last hour: 1 in all");
      assert.equal(await failed.getAttribute("role"), "img");
      assert.equal(await b.page.locator('[data-chart="failed"] rect.chart-bar.c-failed').count(), 1);
      assert.match(await b.page.locator('[data-chart="run"] svg').getAttribute("aria-label") ?? "",
        /^Run time, last hour: p50 up to [\d.]+ ms, p95 up to [\d.]+ ms$/);
      // Every minute's column names its exact values.
      const titles = await b.page.locator('[data-chart="completed"] .chart-hit title').allTextContents();
      assert.equal(titles.length, 60);
      assert.equal(titles.filter((t) => /completed [1-3]$/.test(t)).reduce((n, t) => n + Number(t.at(-1)), 0), 3);
      await b.shot("counts");

      // From the keyboard: focus shows the latest minute, arrows move along.
      await failed.focus();
      const readout = b.page.locator('[data-chart="failed"] .chart-readout');
      assert.match(await readout.textContent() ?? "", /: failed [01]$/);
      await b.page.keyboard.press("Home");
      assert.match(await readout.textContent() ?? "", /: failed 0$/);

      await b.page.setViewportSize({ width: 390, height: 844 });
      assert.equal(await b.page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true);
      await b.shot("phone");
      await b.page.emulateMedia({ colorScheme: "dark" });
      const bar = b.page.locator('[data-chart="failed"] rect.chart-bar').first();
      assert.notEqual(await bar.evaluate((el) => getComputedStyle(el).fill), "rgb(0, 0, 0)");
      await b.shot("dark");
      assert.deepEqual(b.problems, []);
    } finally {
      await b.close();
    }
  });
});
