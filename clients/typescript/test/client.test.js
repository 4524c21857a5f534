/**
 * The producer API and the error classes, against a real server.
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import {
  Client,
  ForbiddenError,
  LeaseLostError,
  NotFoundError,
  SeedcoreError,
  TransportError,
  UnauthorizedError,
  ValidationError,
  WaitTimeoutError,
  Worker,
} from '../dist/index.js';
import { Server, freePort } from './server.js';

describe('the producer API', () => {
  const server = new Server();
  /** @type {Client} */
  let client;

  before(async () => {
    await server.start();
    client = new Client({ url: server.url, timeoutMs: 5_000 });
  });
  after(() => server.stop());

  it('produces a task and waits for the result a worker gives it', async () => {
    const worker = new Worker(client, { name: 'adder', queues: ['produce'], handleSignals: false });
    worker.register('add', (task) => ({ sum: task.params.a + task.params.b }));
    const running = worker.run();
    try {
      const created = await client.createTask({
        type: 'add',
        params: { a: 2, b: 3 },
        queue: 'produce',
      });
      assert.equal(created.status, 'queued');
      const done = await client.wait(created.id, { timeoutMs: 10_000 });
      assert.equal(done.status, 'completed');
      assert.deepEqual(done.result.result, { sum: 5 });
      assert.equal((await client.getTask(created.id)).id, created.id);
    } finally {
      await worker.stop();
      await running;
    }
  });

  it('gives up waiting with WaitTimeoutError, and a cancelled task is final', async () => {
    const created = await client.createTask({ type: 'nobody.serves', queue: 'idle' });
    await assert.rejects(client.wait(created.id, { timeoutMs: 200 }), WaitTimeoutError);
    const cancelled = await client.cancelTask(created.id);
    assert.equal(cancelled.status, 'cancelled');
    assert.equal((await client.wait(created.id, { timeoutMs: 1_000 })).status, 'cancelled');
  });

  it('maps 404, 422 and a stale lease to their error classes', async () => {
    const missing = await client.getTask(randomUUID()).catch((e) => e);
    assert.ok(missing instanceof NotFoundError, String(missing));
    assert.equal(missing.status, 404);
    assert.equal(missing.detail, 'Task not found');

    const invalid = await client.createTask({ type: '' }).catch((e) => e);
    assert.ok(invalid instanceof ValidationError, String(invalid));
    assert.equal(invalid.status, 422);
    assert.deepEqual(invalid.errors[0].loc, ['body', 'type']);

    const registered = await client.registerWorker({ name: 'low-level', queues: ['stale'] });
    const created = await client.createTask({ type: 't', queue: 'stale' });
    const [task] = await client.claim({ workerId: registered.id, max: 1, waitMs: 2_000 });
    assert.equal(task.id, created.id);
    await client.release(task.id, task.leaseToken);
    const stale = await client.complete(task.id, task.leaseToken, { late: true }).catch((e) => e);
    assert.ok(stale instanceof LeaseLostError, String(stale));
    assert.equal(stale.status, 409);
    assert.equal(stale.detail, 'lease lost');
    assert.ok(stale instanceof SeedcoreError);
  });

  it('claims nothing (an empty list) when a long poll ends with a 204', async () => {
    const registered = await client.registerWorker({ name: 'empty', queues: ['empty'] });
    const started = Date.now();
    assert.deepEqual(await client.claim({ workerId: registered.id, max: 5, waitMs: 300 }), []);
    assert.ok(Date.now() - started >= 250, 'the long poll waited');
  });

  it('turns a refused connection into a TransportError', async () => {
    const nowhere = new Client({ url: `http://127.0.0.1:${await freePort()}`, timeoutMs: 2_000 });
    const refused = await nowhere.getTask(randomUUID()).catch((e) => e);
    assert.ok(refused instanceof TransportError, String(refused));
  });
});

describe('a server that asks for tokens', () => {
  const admin = 'sc_ab2710622c37_0d7aee0122567f65772add79f61be70288496117aec397340cf67d1a6f0c2ee6';
  const server = new Server({ SEEDCORE_AUTH: 'auto', SEEDCORE_BOOTSTRAP_TOKEN: admin });

  before(() => server.start());
  after(() => server.stop());

  it('answers 401 without a token and 403 for a token without the scope', async () => {
    const anonymous = new Client({ url: server.url });
    const unauthorized = await anonymous.createTask({ type: 't' }).catch((e) => e);
    assert.ok(unauthorized instanceof UnauthorizedError, String(unauthorized));
    assert.equal(unauthorized.status, 401);

    const operator = new Client({ url: server.url, token: admin });
    const made = await operator.http.request('POST', '/api/v1/tokens', {
      name: 'reader',
      role: 'viewer',
    });
    const viewer = new Client({ url: server.url, token: made.token });
    const forbidden = await viewer.registerWorker({ name: 'w' }).catch((e) => e);
    assert.ok(forbidden instanceof ForbiddenError, String(forbidden));
    assert.equal(forbidden.status, 403);
    assert.match(String(forbidden.detail), /workers:pull/);
  });
});
