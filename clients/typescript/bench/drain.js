/**
 * Drain rate: how fast one Worker process empties a queue of noop tasks.
 *
 *   node bench/drain.js [TASKS=5000] [CONCURRENCY=16]
 *
 * Against SEEDCORE_URL when set; otherwise it starts its own `seedcore serve` (as the tests do;
 * DATABASE_URL, when set, is passed on so the run uses PostgreSQL). Bounded: it gives up after
 * two minutes.
 */

import { Client, Worker } from '../dist/index.js';
import { Server } from '../test/server.js';

const total = Number(process.argv[2] ?? 5000);
const concurrency = Number(process.argv[3] ?? 16);
const queue = `drain-${process.pid}`;

let server = null;
let url = process.env.SEEDCORE_URL;
if (!url) {
  const env = process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {};
  server = await new Server(env).start();
  url = server.url;
}
const client = new Client({ url, token: process.env.SEEDCORE_TOKEN });
const claims = { count: 0, tasks: 0, ms: 0 };
const claim = client.claim.bind(client);
client.claim = async (options) => {
  const sent = Date.now();
  const tasks = await claim(options);
  claims.count++;
  claims.tasks += tasks.length;
  claims.ms += Date.now() - sent;
  return tasks;
};
for (let made = 0; made < total; made += 1000) {
  const batch = Array.from({ length: Math.min(1000, total - made) }, () => ({
    type: 'noop.bench',
    queue,
  }));
  await client.createTasks(batch);
}

let done = 0;
let finished;
const all = new Promise((resolve) => (finished = resolve));
const worker = new Worker(client, {
  name: 'drain',
  queues: [queue],
  concurrency,
  handleSignals: false,
});
worker.register('noop.bench', () => null);
worker.on('completed', () => {
  if (++done === total) finished();
});
const started = Date.now();
const running = worker.run();
const limit = setTimeout(finished, 120_000);
await all;
clearTimeout(limit);
const seconds = (Date.now() - started) / 1000;
await worker.stop();
await running;
await server?.stop();
console.log(
  `${done} of ${total} tasks in ${seconds.toFixed(2)} s: ${(done / seconds).toFixed(0)} tasks/s (concurrency ${concurrency}); ` +
    `${claims.count} claims of ${(claims.tasks / claims.count).toFixed(1)} tasks on average, ` +
    `${(claims.ms / claims.count).toFixed(1)} ms each`,
);
