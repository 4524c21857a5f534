// @ts-check
/**
 * A queue's concurrency limit from the Queues page, in a real browser against a real server:
 * set from the row's field, shown there and in the API, refused with the API's reason beside
 * the field when out of range, and cleared by saving the field empty.
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

/** The queue's entry in the API's list. */
async function listed(/** @type {string} */ name) {
  const { items } = await server.api("GET", "/api/v1/queues");
  return items.find((/** @type {{name: string}} */ q) => q.name === name);
}

describe("the Queues page's limit", () => {
  test("a limit set from the page is shown, an out-of-range one is refused, and it clears", async () => {
    await server.api("POST", "/api/v1/tasks", { type: "echo", queue: "reports", run_immediately: true });
    const b = await openBrowser("queue-limits");
    try {
      await b.page.goto(`${server.ui}/queues`);
      const row = b.page.locator('tr[data-queue="reports"]');
      const shown = row.locator(".limit-value");
      await shown.waitFor();
      assert.equal(await shown.textContent(), "none");

      const field = row.getByLabel("Concurrency limit of reports");
      await field.fill("3");
      await row.locator("button:text-is('Save')").click();
      await b.page.waitForFunction(() => document.querySelector('tr[data-queue="reports"] .limit-value')?.textContent === "3");
      assert.equal((await listed("reports")).concurrency, 3);
      await b.shot("set");

      await row.getByLabel("Concurrency limit of reports").fill("0");
      await row.locator("button:text-is('Save')").click();
      const refusal = row.locator(".limit-message .error");
      await refusal.waitFor();
      assert.match(await refusal.textContent() ?? "", /greater than or equal to 1/);
      assert.equal((await listed("reports")).concurrency, 3, "the refused limit was not stored");
      await b.shot("refused");

      await row.getByLabel("Concurrency limit of reports").fill("");
      await row.locator("button:text-is('Save')").click();
      await b.page.waitForFunction(() => document.querySelector('tr[data-queue="reports"] .limit-value')?.textContent === "none");
      assert.equal((await listed("reports")).concurrency, null);
      await b.shot("cleared");
      assert.deepEqual(b.problems, []);
    } finally {
      await b.close();
    }
  });
});
