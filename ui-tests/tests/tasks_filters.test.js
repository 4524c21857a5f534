// @ts-check
/**
 * The Tasks page's filters in a real browser against a real server: a parameter filter typed
 * as `customer_id = 42` shows exactly the matching tasks, a search by error text finds the
 * failed task, a click on the Created header sorts oldest first, Next and Previous page by
 * cursor, and a parent's detail page lists its children.
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

/** Creates tasks that stay `created` (nothing runs them); returns their ids in order. */
async function created(tasks) {
  const { ids } = await server.api("POST", "/api/v1/tasks/bulk", { tasks });
  return ids;
}

/** The ids of the rows the list shows, in order. */
async function rows(page) {
  return page.locator("tr[data-task]").evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-task")));
}

describe("the Tasks page's filters, sort and paging", () => {
  test("a parameter filter typed as customer_id = 42 shows exactly the matching tasks, and survives a reload", async () => {
    const matching = await created([42, 42, 42.0].map((id) => ({ type: "pfilter", params: { customer_id: id } })));
    await created([{ type: "pfilter", params: { customer_id: 7 } }, { type: "pfilter", params: { customer_id: "42" } }]);
    const b = await openBrowser("param-filter");
    try {
      await b.page.goto(`${server.ui}/tasks?type=pfilter`);
      await b.page.locator("tr[data-task]").first().waitFor();
      assert.equal((await rows(b.page)).length, 5);
      await b.page.fill("#f-param", "customer_id = 42");
      await b.page.click("button:has-text('Add filter')");
      assert.equal(await b.page.locator('.chip[data-param="customer_id"]').count(), 1);
      await b.page.click("form.task-filters button[type=submit]");
      await b.page.waitForURL(/params\.customer_id=42/);
      await eventually(async () => (await rows(b.page)).length === 3);
      assert.deepEqual(new Set(await rows(b.page)), new Set(matching));
      await b.shot("filtered");
      await b.page.reload();
      await eventually(async () => (await rows(b.page)).length === 3);
      assert.equal(await b.page.locator('.chip[data-param="customer_id"]').count(), 1);
      // A malformed filter is refused beside its input.
      await b.page.fill("#f-param", "customer_id");
      await b.page.click("button:has-text('Add filter')");
      assert.match(await b.page.locator(".filter-message").textContent() ?? "", /path = value/);
      // Removing the chip shows every task of the type again.
      await b.page.click('.chip[data-param="customer_id"] button');
      await eventually(async () => (await rows(b.page)).length === 5);
      assert.doesNotMatch(b.page.url(), /params\./);
      assert.deepEqual(b.problems, []);
    } finally {
      await b.close();
    }
  });

  test("a search by error text finds the failed task", async () => {
    const failing = await server.api("POST", "/api/v1/tasks", {
      type: "fail", params: { message: "gateway exploded 7781" }, max_attempts: 1, run_immediately: true,
    });
    await eventually(async () => (await server.api("GET", `/api/v1/tasks/${failing.id}`)).status === "failed");
    await created([{ type: "echo", params: { note: "nothing to see" } }]);
    const b = await openBrowser("search");
    try {
      await b.page.goto(`${server.ui}/tasks`);
      await b.page.locator("tr[data-task]").first().waitFor();
      await b.page.fill("#f-q", "EXPLODED 7781");
      await b.page.press("#f-q", "Enter");
      await b.page.waitForURL(/q=EXPLODED/);
      await eventually(async () => JSON.stringify(await rows(b.page)) === JSON.stringify([failing.id]));
      await b.shot("found");
      assert.deepEqual(b.problems, []);
    } finally {
      await b.close();
    }
  });

  test("a click on the Created header sorts the oldest first", async () => {
    const made = [];
    for (let i = 0; i < 3; i++) made.push((await server.api("POST", "/api/v1/tasks", { type: "sortjob" })).id);
    const b = await openBrowser("sort");
    try {
      await b.page.goto(`${server.ui}/tasks?type=sortjob`);
      await eventually(async () => (await rows(b.page)).length === 3);
      assert.deepEqual(await rows(b.page), [...made].reverse());
      const created = b.page.locator("th:has(button[data-sort=created_at])");
      assert.equal(await created.getAttribute("aria-sort"), "descending");
      await b.page.click("button[data-sort=created_at]");
      await b.page.waitForURL(/sort=created_at/);
      await eventually(async () => JSON.stringify(await rows(b.page)) === JSON.stringify(made));
      assert.equal(await created.getAttribute("aria-sort"), "ascending");
      await b.shot("oldest-first");
      assert.deepEqual(b.problems, []);
    } finally {
      await b.close();
    }
  });

  test("Next and Previous page through the list by cursor", async () => {
    await created(Array.from({ length: 60 }, (_, i) => ({ type: "pagejob", params: { i } })));
    const b = await openBrowser("paging");
    try {
      await b.page.goto(`${server.ui}/tasks?type=pagejob`);
      await eventually(async () => (await rows(b.page)).length === 50);
      const first = await rows(b.page);
      assert.match(await b.page.locator("#task-total").textContent() ?? "", /1–50 of 60/);
      assert.equal(await b.page.locator("button:has-text('← Previous')").isDisabled(), true);
      await b.page.click("button:has-text('Next →')");
      await eventually(async () => (await rows(b.page)).length === 10);
      const second = await rows(b.page);
      assert.equal(second.filter((id) => first.includes(id)).length, 0);
      assert.match(await b.page.locator("#task-total").textContent() ?? "", /51–60 of 60/);
      assert.equal(await b.page.locator("button:has-text('Next →')").isDisabled(), true);
      await b.shot("second-page");
      await b.page.click("button:has-text('← Previous')");
      await eventually(async () => (await rows(b.page)).length === 50);
      assert.deepEqual(await rows(b.page), first);
      assert.deepEqual(b.problems, []);
    } finally {
      await b.close();
    }
  });

  test("a parent's detail page lists its children with links", async () => {
    const parent = await server.api("POST", "/api/v1/tasks", { type: "parentjob" });
    const children = await created([1, 2].map((n) => ({ type: "childjob", params: { n }, depends_on: [parent.id] })));
    const b = await openBrowser("children");
    try {
      await b.page.goto(`${server.ui}/tasks/${parent.id}`);
      const list = b.page.locator("#task-children");
      await list.waitFor();
      const hrefs = await list.locator("a").evaluateAll((links) => links.map((a) => a.getAttribute("href")));
      assert.equal(hrefs.length, 2);
      for (const id of children) assert.ok(hrefs.some((href) => href?.endsWith(`/tasks/${id}`)), id);
      await b.shot("children");
      await b.page.click(`#task-children a[href$="${children[0]}"]`);
      await b.page.waitForURL(new RegExp(`/tasks/${children[0]}$`));
      assert.deepEqual(b.problems, []);
    } finally {
      await b.close();
    }
  });
});
