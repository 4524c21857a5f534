/**
 * The Worker against a real server: it runs handlers, reports outcomes under the lease, obeys
 * cancellation and shutdown, keeps leases while its event loop is blocked, and rides out a
 * server that goes away and comes back.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Client, PermanentError, TaskAbortedError, Worker } from '../dist/index.js';
import { Server, until } from './server.js';

/** Starts a worker with the given handlers; its events are collected in order. */
function startWorker(client, options, handlers) {
  const events = [];
  const worker = new Worker(client, {
    handleSignals: false,
    ...options,
    onEvent: (event) => events.push({ ...event, at: Date.now() }),
  });
  for (const [type, handler] of Object.entries(handlers)) worker.register(type, handler);
  const running = worker.run();
  const stop = async () => {
    await worker.stop();
    await running;
  };
  return { worker, events, running, stop };
}

const of = (events, name, task) =>
  events.filter((e) => e.event === name && (!task || e.task === task));

describe('a Worker', () => {
  const server = new Server();
  /** @type {Client} */
  let client;

  before(async () => {
    await server.start();
    client = new Client({ url: server.url, timeoutMs: 5_000 });
  });
  after(() => server.stop());

  it('completes every task it claims with what its handler returned', async () => {
    const run = startWorker(
      client,
      { name: 'doubler', queues: ['many'], concurrency: 4 },
      {
        double: async (task) => ({ twice: task.params.n * 2 }),
      },
    );
    try {
      const created = [];
      for (let n = 0; n < 30; n++) {
        created.push(await client.createTask({ type: 'double', params: { n }, queue: 'many' }));
      }
      for (const [n, task] of created.entries()) {
        const done = await client.wait(task.id, { timeoutMs: 10_000 });
        assert.equal(done.status, 'completed');
        assert.deepEqual(done.result.result, { twice: n * 2 });
      }
      assert.equal(of(run.events, 'completed').length, 30);
      assert.equal(of(run.events, 'registered').length, 1);
    } finally {
      await run.stop();
    }
    assert.equal(run.events.at(-1).event, 'stopped');
  });

  it('keeps a limited queue to its count while other queues use the free slots', async () => {
    const running = { limited: 0, open: 0 };
    const most = { limited: 0, open: 0 };
    const run = startWorker(
      client,
      {
        name: 'limits',
        queues: ['limited', 'open'],
        concurrency: 4,
        queueConcurrency: { limited: 1 },
      },
      {
        slow: async (task) => {
          const queue = task.params.queue;
          running[queue] += 1;
          most[queue] = Math.max(most[queue], running[queue]);
          await new Promise((r) => setTimeout(r, 300));
          running[queue] -= 1;
        },
      },
    );
    try {
      const created = [];
      for (const queue of ['limited', 'limited', 'limited', 'open', 'open', 'open']) {
        created.push(await client.createTask({ type: 'slow', params: { queue }, queue }));
      }
      for (const task of created) {
        const done = await client.wait(task.id, { timeoutMs: 10_000 });
        assert.equal(done.status, 'completed');
      }
      assert.equal(most.limited, 1);
      assert.ok(most.open > 1, `open ran ${most.open} at once`);
    } finally {
      await run.stop();
    }
  });

  it('completes many quick tasks through batches holding several completions', async () => {
    const run = startWorker(
      client,
      { name: 'batcher', queues: ['batches'], concurrency: 16 },
      { quick: async (task) => ({ n: task.params.n }) },
    );
    try {
      const bodies = Array.from({ length: 300 }, (_, n) => ({
        type: 'quick',
        params: { n },
        queue: 'batches',
      }));
      const ids = await client.createTasks(bodies);
      for (const [n, id] of ids.entries()) {
        const done = await client.wait(id, { timeoutMs: 30_000 });
        assert.equal(done.status, 'completed');
        assert.deepEqual(done.result.result, { n });
      }
      const completed = of(run.events, 'completed');
      assert.deepEqual(completed.map((e) => e.task).sort(), [...ids].sort());
      assert.ok(Math.max(...completed.map((e) => e.batch)) > 1, 'some batch held several');
    } finally {
      await run.stop();
    }
  });

  it('reports a lease lost inside a batch for that task only', async () => {
    const ids = await client.createTasks(
      Array.from({ length: 3 }, () => ({ type: 't', queue: 'lost' })),
    );
    const worker = await client.registerWorker({ name: 'lost', queues: ['lost'], types: ['t'] });
    const tasks = await client.claim({ workerId: worker.id, max: 3, queues: ['lost'] });
    assert.deepEqual(tasks.map((t) => t.id).sort(), [...ids].sort());
    const stale = tasks[1];
    await client.release(stale.id, stale.leaseToken);
    const outcomes = await client.completeMany(
      tasks.map((t) => ({ taskId: t.id, leaseToken: t.leaseToken, result: t.id })),
    );
    assert.deepEqual(
      outcomes.map((o) => [o.task_id, o.outcome]),
      tasks.map((t) => [t.id, t === stale ? 'lease_lost' : 'completed']),
    );
    assert.equal((await client.getTask(stale.id)).status, 'queued');
    for (const task of [tasks[0], tasks[2]]) {
      const stored = await client.getTask(task.id);
      assert.deepEqual([stored.status, stored.result.result], ['completed', task.id]);
    }
  });

  it('drops a result whose lease was lost and completes the rest of its batch', async () => {
    let open;
    const gate = new Promise((resolve) => (open = resolve));
    let stolen = false;
    const run = startWorker(
      client,
      { name: 'mixed', queues: ['mixed'], concurrency: 8 },
      {
        gated: async () => {
          await gate;
          return 'kept';
        },
        stolen: async (task) => {
          if (!stolen) {
            // Its lease is taken away while the others wait: its result is refused alone.
            stolen = true;
            await client.release(task.id, task.leaseToken);
          }
          await gate;
          return `token ${task.leaseToken}`;
        },
      },
    );
    try {
      const kept = await client.createTasks(
        Array.from({ length: 5 }, () => ({ type: 'gated', queue: 'mixed' })),
      );
      const lost = await client.createTask({ type: 'stolen', queue: 'mixed', maxAttempts: 1 });
      await until(() => of(run.events, 'started').length >= 6, 10_000, 'six handlers');
      open();
      for (const id of kept) {
        assert.equal((await client.wait(id, { timeoutMs: 10_000 })).status, 'completed');
      }
      await until(() => of(run.events, 'result_dropped', lost.id).length, 10_000, 'the drop');
      assert.equal(of(run.events, 'result_dropped', lost.id)[0].reason, 'lease_lost');
      assert.equal((await client.wait(lost.id, { timeoutMs: 10_000 })).status, 'completed');
      assert.equal(of(run.events, 'completed', lost.id).length, 1);
    } finally {
      await run.stop();
    }
  });

  it('fails a task with the type and message of the error its handler threw', async () => {
    class QuotaExceeded extends Error {
      name = 'QuotaExceeded';
    }
    const run = startWorker(
      client,
      { name: 'thrower', queues: ['throws'] },
      {
        charge: () => {
          throw new QuotaExceeded('over the limit');
        },
      },
    );
    try {
      const task = await client.createTask({ type: 'charge', queue: 'throws', maxAttempts: 1 });
      const done = await client.wait(task.id, { timeoutMs: 10_000 });
      assert.equal(done.status, 'failed');
      assert.match(done.error, /^QuotaExceeded: over the limit\n.*QuotaExceeded/s);
      const [failed] = of(run.events, 'failed', task.id);
      assert.equal(failed.error_type, 'QuotaExceeded');
    } finally {
      await run.stop();
    }
  });

  it('lets a plain error be retried and fails a PermanentError at once', async () => {
    const calls = new Map();
    const count = (task) => calls.set(task.id, (calls.get(task.id) ?? 0) + 1);
    const run = startWorker(
      client,
      { name: 'retrier', queues: ['retries'] },
      {
        flaky: (task) => {
          count(task);
          throw new Error(`attempt ${task.attempt}`);
        },
        doomed: (task) => {
          count(task);
          throw new PermanentError('bad input');
        },
      },
    );
    try {
      const flaky = await client.createTask({ type: 'flaky', queue: 'retries', maxAttempts: 3 });
      const doomed = await client.createTask({ type: 'doomed', queue: 'retries', maxAttempts: 3 });
      const retried = await client.wait(flaky.id, { timeoutMs: 15_000 });
      const refused = await client.wait(doomed.id, { timeoutMs: 15_000 });
      assert.equal(retried.status, 'failed');
      assert.match(retried.error, /^Error: attempt 3/);
      assert.equal(calls.get(flaky.id), 3);
      assert.equal(refused.status, 'failed');
      assert.match(refused.error, /^PermanentError: bad input/);
      assert.equal(calls.get(doomed.id), 1);
    } finally {
      await run.stop();
    }
  });

  it("aborts a cancelled task's handler within a heartbeat and never completes it", async () => {
    let started = 0;
    let aborted = 0;
    let reason = null;
    const run = startWorker(
      client,
      { name: 'cancellable', queues: ['cancels'] },
      {
        long: (_task, ctx) =>
          new Promise((resolve) => {
            started = Date.now();
            ctx.signal.addEventListener('abort', () => {
              aborted = Date.now();
              reason = ctx.signal.reason;
              resolve('finished anyway');
            });
          }),
      },
    );
    try {
      const task = await client.createTask({ type: 'long', queue: 'cancels' });
      await until(() => started, 5_000, 'the handler to start');
      const cancelledAt = Date.now();
      await client.cancelTask(task.id);
      await until(() => aborted, 5_000, 'the signal to abort');
      // The heartbeat interval is a third of the 3 s lease.
      assert.ok(aborted - cancelledAt < 2_000, `aborted after ${aborted - cancelledAt} ms`);
      assert.ok(reason instanceof TaskAbortedError);
      assert.equal(reason.reason, 'cancelled');
      await until(() => of(run.events, 'result_dropped', task.id).length, 2_000, 'the drop');
      assert.equal(of(run.events, 'aborted', task.id)[0].reason, 'cancelled');
      assert.equal(of(run.events, 'completed', task.id).length, 0);
      assert.equal((await client.getTask(task.id)).status, 'cancelled');
    } finally {
      await run.stop();
    }
  });

  it('releases on stop the tasks whose handlers outlive the grace', async () => {
    let reason = null;
    const run = startWorker(
      client,
      { name: 'stopper', queues: ['stops'], graceSeconds: 0.3 },
      {
        endless: (_task, ctx) =>
          new Promise((resolve) => {
            ctx.signal.addEventListener('abort', () => resolve((reason = ctx.signal.reason)));
          }),
      },
    );
    const task = await client.createTask({ type: 'endless', queue: 'stops' });
    await until(() => of(run.events, 'started', task.id).length, 5_000, 'the handler to start');
    await run.stop();
    assert.equal(reason?.reason, 'shutdown');
    const names = run.events.filter((e) => e.task === task.id).map((e) => e.event);
    assert.deepEqual(names, ['started', 'aborted', 'released', 'result_dropped']);
    assert.equal(run.events.at(-1).event, 'stopped');
    assert.equal((await client.getTask(task.id)).status, 'queued');
    const again = await client.registerWorker({ name: 'after', queues: ['stops'] });
    const [claimed] = await client.claim({ workerId: again.id, waitMs: 2_000 });
    assert.equal(claimed.id, task.id);
    assert.equal(claimed.attempt, 1, 'a release leaves the attempt uncounted');
  });

  it('stops claiming when quieted and stops altogether when told to terminate', async () => {
    const run = startWorker(
      client,
      { name: 'obedient', queues: ['orders'] },
      { echo: (t) => t.params },
    );
    const workerId = await until(() => run.worker.workerId, 5_000, 'registration');
    await until(() => of(run.events, 'state').length, 5_000, 'the first state');
    await client.quietWorker(workerId);
    await until(
      () => run.events.some((e) => e.event === 'state' && e.state === 'quiet'),
      5_000,
      'quiet',
    );
    const task = await client.createTask({ type: 'echo', queue: 'orders' });
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal((await client.getTask(task.id)).status, 'queued', 'a quiet worker claims nothing');
    await client.terminateWorker(workerId);
    await run.running;
    assert.deepEqual(
      run.events.filter((e) => e.event === 'state').map((e) => e.state),
      ['running', 'quiet', 'terminate'],
    );
    assert.equal(run.events.at(-1).event, 'stopped');
    await client.cancelTask(task.id);
  });

  it('keeps a task whose claim waited longer than a lease before it answered', async () => {
    const run = startWorker(
      client,
      { name: 'waiter', queues: ['waits'] },
      {
        short: async (_task, ctx) => {
          await new Promise((r) => setTimeout(r, 500));
          return { aborted: ctx.signal.aborted };
        },
      },
    );
    try {
      await until(() => of(run.events, 'registered').length, 5_000, 'registration');
      // The long poll is open all this time; the lease starts when it answers.
      await new Promise((r) => setTimeout(r, 3_500));
      const task = await client.createTask({ type: 'short', queue: 'waits' });
      const done = await client.wait(task.id, { timeoutMs: 10_000 });
      assert.equal(done.status, 'completed');
      assert.deepEqual(done.result.result, { aborted: false });
      assert.equal(of(run.events, 'aborted').length, 0);
    } finally {
      await run.stop();
    }
  });

  it('keeps the lease of a handler that blocks the event loop for longer than three leases', async () => {
    const run = startWorker(
      client,
      { name: 'blocker', queues: ['blocks'], concurrency: 1 },
      {
        spin: () => {
          const end = Date.now() + 10_000;
          while (Date.now() < end) {
            // Synchronous work: no timer of this thread runs meanwhile.
          }
          return { spun: true };
        },
      },
    );
    try {
      const task = await client.createTask({ type: 'spin', queue: 'blocks' });
      // No request of this thread is in flight while it is blocked: its timeout would lapse.
      await until(() => of(run.events, 'completed', task.id).length, 20_000, 'the completion');
      const done = await client.getTask(task.id);
      assert.equal(done.status, 'completed');
      assert.deepEqual(done.result.result, { spun: true });
      assert.equal(of(run.events, 'started', task.id).length, 1, 'one attempt only');
      assert.equal(of(run.events, 'aborted').length, 0);
    } finally {
      await run.stop();
    }
  });
});

describe('a Worker whose server goes away', () => {
  const server = new Server();

  before(() => server.start());
  after(() => server.stop());

  it('backs off while the server is down and works again once it is back', async () => {
    const client = new Client({ url: server.url, timeoutMs: 2_000 });
    const run = startWorker(
      client,
      { name: 'patient', queues: ['outage'] },
      { echo: (t) => t.params },
    );
    try {
      await until(() => of(run.events, 'registered').length, 5_000, 'registration');
      await server.kill();
      const retries = () =>
        run.events.filter((e) => e.event === 'network_error' && e.operation === 'claim');
      await until(() => retries().length >= 4, 10_000, 'four claim retries');
      const pauses = retries().map((e) => e.retry_in_ms);
      assert.ok(pauses[0] <= 100, `first pause ${pauses[0]}`);
      assert.ok(pauses[3] >= 400, `the pause doubles: ${pauses}`);
      await server.start();
      const task = await client.createTask({
        type: 'echo',
        params: { back: true },
        queue: 'outage',
      });
      const done = await client.wait(task.id, { timeoutMs: 15_000 });
      assert.equal(done.status, 'completed');
      assert.deepEqual(done.result.result, { back: true });
    } finally {
      await run.stop();
    }
  });

  it('registers again when a server that lost its data no longer knows it', async () => {
    const client = new Client({ url: server.url, timeoutMs: 2_000 });
    const run = startWorker(
      client,
      { name: 'reborn', queues: ['reborn'] },
      { echo: (t) => t.params },
    );
    try {
      const first = await until(() => run.worker.workerId, 5_000, 'registration');
      await server.wipe();
      await server.start();
      const task = await client.createTask({ type: 'echo', params: { n: 1 }, queue: 'reborn' });
      const done = await client.wait(task.id, { timeoutMs: 15_000 });
      assert.equal(done.status, 'completed');
      const ids = of(run.events, 'registered').map((e) => e.worker_id);
      assert.equal(ids.length, 2, `registrations: ${ids}`);
      assert.equal(ids[0], first);
      assert.equal(done.worker_id, ids[1]);
    } finally {
      await run.stop();
    }
  });

  it('aborts a handler whose lease no heartbeat could renew before it ran out', async () => {
    const client = new Client({ url: server.url, timeoutMs: 2_000 });
    let reason = null;
    const run = startWorker(
      client,
      { name: 'fenced', queues: ['cut'] },
      {
        long: (_task, ctx) =>
          new Promise((resolve) =>
            ctx.signal.addEventListener('abort', () => resolve((reason = ctx.signal.reason))),
          ),
      },
    );
    try {
      const task = await client.createTask({ type: 'long', queue: 'cut' });
      await until(() => of(run.events, 'started', task.id).length, 5_000, 'the handler to start');
      const cutAt = Date.now();
      await server.kill();
      await until(() => reason, 5_000, 'the handler to be aborted');
      // The lease is 3 s, renewed every second until the cut.
      assert.ok(Date.now() - cutAt < 3_000, `aborted ${Date.now() - cutAt} ms after the cut`);
      assert.equal(reason.reason, 'lease_lost');
      assert.equal(of(run.events, 'aborted', task.id)[0].reason, 'lease_lost');
      await until(() => of(run.events, 'result_dropped', task.id).length, 2_000, 'the drop');
      assert.equal(of(run.events, 'completed', task.id).length, 0);
    } finally {
      await run.stop();
    }
  });
});
