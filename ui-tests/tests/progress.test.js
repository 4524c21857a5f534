// @ts-check
/**
 * A task run by a pull worker, on its dashboard page: the progress its worker reports in a
 * heartbeat shows in the task's fields. The server's own workers serve only `default`, so
 * the task, in another queue, waits for the pull worker.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openBrowser, startServer } from "../lib/harness.js";

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;

before(async () => {
  server = await startServer({ env: { SEEDCORE_QUEUES: "default" } });
});
after(async () => {
  await server?.stop();
});

describe("a task's progress", () => {
  test("a running task's page shows the progress its pull worker reported", async () => {
    const task = await server.api("POST", "/api/v1/tasks", { type: "outside", queue: "pulled", run_immediately: true });
    const worker = await server.api("POST", "/api/v1/workers", { name: "ui", client_name: "ui-tests", client_version: "1" });
    const claimed = await server.api("POST", "/api/v1/tasks/claim", { worker_id: worker.id, queues: ["pulled"] });
    assert.equal(claimed.tasks[0].id, task.id);
    const b = await openBrowser("progress");
    try {
      await b.page.goto(`${server.ui}/tasks/${task.id}`);
      await b.page.locator('#task-status[data-status="running"]').waitFor();
      const progress = b.page.locator("dt:text-is('Progress') + dd");
      assert.equal(await progress.textContent(), "—");
      await server.api("POST", `/api/v1/tasks/${task.id}/heartbeat`, { lease_token: claimed.tasks[0].lease_token, progress: 0.5 });
      await b.page.reload();
      await b.page.locator('#task-status[data-status="running"]').waitFor();
      assert.equal(await progress.textContent(), "50 %");
      await b.shot("reported");
    } finally {
      await b.close();
    }
  });
});
