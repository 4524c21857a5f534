// @ts-check
/**
 * The dashboard behind a reverse proxy that publishes the server under `/sc` and strips the
 * prefix (SEEDCORE_BASE_PATH=/sc): login, the session cookie's path, pages, live updates and
 * changes all go through the prefix.
 */

import assert from "node:assert/strict";
import { createServer, request } from "node:http";
import { after, before, test } from "node:test";
import { generateToken, openBrowser, startServer } from "../lib/harness.js";

const admin = generateToken();
/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import("node:http").Server} */
let proxy;
let front = "";

before(async () => {
  server = await startServer({ adminToken: admin, env: { SEEDCORE_BASE_PATH: "/sc" } });
  const target = new URL(server.origin);
  proxy = createServer((req, res) => {
    if (!req.url?.startsWith("/sc/")) {
      res.writeHead(404).end("outside the prefix");
      return;
    }
    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url.slice(3), headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise((r) => proxy.listen(0, "127.0.0.1", () => r(null)));
  const address = proxy.address();
  front = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/sc`;
});
after(async () => {
  proxy?.closeAllConnections();
  await new Promise((r) => proxy ? proxy.close(() => r(null)) : r(null));
  await server?.stop();
});

test("behind a proxy under /sc, a visitor logs in and follows a task it creates to completion", async () => {
  const b = await openBrowser("prefix");
  try {
    await b.page.goto(`${front}/ui/tasks`);
    await b.page.waitForURL(`${front}/ui/login`);
    await b.page.fill("#token", admin);
    await b.page.click("button[type=submit]");
    await b.page.waitForURL(`${front}/ui/`);
    const [session] = (await b.context.cookies()).filter((c) => c.name === "seedcore_session");
    assert.equal(session.path, "/sc/");
    await b.page.click("nav >> text=Tasks");
    await b.page.waitForURL(`${front}/ui/tasks`);
    await b.page.click("summary:text-is('New task')");
    await b.page.fill("#n-params", '{"through": "the proxy"}');
    await b.page.click("text=Create task");
    await b.page.locator('#task-status[data-status="completed"]').waitFor({ timeout: 15_000 });
    assert.match(b.page.url(), new RegExp(`^${front}/ui/tasks/[0-9a-f-]{36}$`));
    await b.shot("completed");
    assert.deepEqual(b.problems, []);
  } finally {
    await b.close();
  }
});
