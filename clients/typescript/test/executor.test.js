/**
 * The Executor against a real server whose workers send it tasks: results, progress while a
 * handler works, failures, cancellation and signed requests.
 */

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';

import { Client, Executor, PermanentError, TaskAbortedError } from '../dist/index.js';
import { Server, until } from './server.js';

const SECRET = '0123456789abcdef0123456789abcdef';

describe('an Executor', () => {
  let stops = [];
  afterEach(async () => {
    for (const stop of stops.reverse()) await stop();
    stops = [];
  });

  /** Serves `executor`, and a server whose workers send it `report` tasks; returns a client. */
  async function start(executor, serverSecret) {
    const port = await executor.listen(0);
    stops.push(() => executor.close());
    const env = {
      SEEDCORE_WORKER_CONCURRENCY: '2',
      SEEDCORE_EXECUTORS: `report=http://127.0.0.1:${port}/run`,
    };
    if (serverSecret) env.SEEDCORE_EXECUTOR_SECRETS = `report=${serverSecret}`;
    const server = new Server(env);
    stops.push(() => server.stop());
    await server.start();
    return new Client({ url: server.url, timeoutMs: 5_000 });
  }

  async function finished(client, task) {
    const created = await client.createTask({ type: 'report', params: {}, ...task });
    return client.wait(created.id, { timeoutMs: 20_000 });
  }

  it("stores the handler's result as the task's", async () => {
    const seen = [];
    const executor = new Executor().register('report', (task) => {
      seen.push([task.type, task.params, task.attempt]);
      return { rows: task.params.rows * 2 };
    });
    const client = await start(executor);
    const done = await finished(client, { params: { rows: 21 } });
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result.result, { rows: 42 });
    assert.deepEqual(seen, [['report', { rows: 21 }, 1]]);
  });

  it('shows progress on the task while the handler works', async () => {
    let goOn;
    const released = new Promise((r) => (goOn = r));
    const executor = new Executor().register('report', async (_task, progress) => {
      progress(0.5);
      await released;
      return 'done';
    });
    const client = await start(executor);
    const task = await client.createTask({ type: 'report', params: {} });
    const running = await until(async () => {
      const now = await client.getTask(task.id);
      return now.progress === 0.5 && now;
    }, 10_000, 'progress 0.5');
    assert.equal(running.status, 'running');
    goOn();
    const done = await client.wait(task.id, { timeoutMs: 20_000 });
    assert.equal(done.status, 'completed');
    assert.equal(done.result.result, 'done');
  });

  it('fails the attempt on a throw, and retries it unless the error is permanent', async () => {
    const executor = new Executor().register('report', (task) => {
      if (task.params.permanent) throw new PermanentError('the input is unusable');
      throw new Error(`attempt ${task.attempt} broke`);
    });
    const client = await start(executor);
    const permanent = await finished(client, { params: { permanent: true }, maxAttempts: 3 });
    assert.equal(permanent.status, 'failed');
    assert.equal(permanent.attempts, 1);
    assert.match(permanent.error, /PermanentError: the input is unusable/);
    const retried = await finished(client, { params: { permanent: false }, maxAttempts: 2 });
    assert.equal(retried.status, 'failed');
    assert.equal(retried.attempts, 2);
    assert.match(retried.error, /Error: attempt 2 broke/);
  });

  it('aborts the handler once its task is cancelled', async () => {
    let aborted = null;
    const executor = new Executor().register('report', async (_task, progress, signal) => {
      try {
        for (let i = 0; i < 500; i++) {
          progress(0.1);
          await new Promise((r) => setTimeout(r, 20));
        }
      } catch (error) {
        aborted = { error, signalled: signal.aborted };
        throw error;
      }
    });
    const client = await start(executor);
    const task = await client.createTask({ type: 'report', params: {} });
    await until(async () => (await client.getTask(task.id)).progress === 0.1, 10_000, 'progress');
    await client.cancelTask(task.id);
    await until(() => aborted, 10_000, 'the handler told to stop');
    assert.ok(aborted.error instanceof TaskAbortedError);
    assert.equal(aborted.signalled, true);
    assert.equal((await client.getTask(task.id)).status, 'cancelled');
  });

  it('checks the documented signature', () => {
    const executor = new Executor({ secret: SECRET, maxSkewSeconds: Infinity });
    const good = 'v1=1d3a1a80c8ad0d56d3cc81d488b5779dbdd6367281fd813d1d9b8d7a5cd0204b';
    assert.equal(executor.signatureProblem('1700000000', good, Buffer.from('{"id":"x"}')), null);
    assert.equal(
      executor.signatureProblem('1700000000', good, Buffer.from('{"id":"y"}')),
      'the signature does not match',
    );
    assert.equal(
      new Executor({ secret: SECRET }).signatureProblem('1700000000', good, Buffer.from('{"id":"x"}')),
      "the timestamp is too far from this machine's clock",
    );
  });

  it('runs a task signed with its secret', async () => {
    const executor = new Executor({ secret: SECRET }).register('report', () => 'signed');
    const client = await start(executor, SECRET);
    const done = await finished(client, {});
    assert.equal(done.status, 'completed');
    assert.equal(done.result.result, 'signed');
  });

  it('refuses a task signed with another secret, running nothing', async () => {
    const ran = [];
    const executor = new Executor({ secret: SECRET }).register('report', (task) => ran.push(task.id));
    const client = await start(executor, 'another-secret-of-at-least-32-chars!');
    const done = await finished(client, { maxAttempts: 3 });
    assert.equal(done.status, 'failed');
    assert.equal(done.attempts, 1, 'a 4xx is final');
    assert.match(done.error, /401/);
    assert.match(done.error, /the signature does not match/);
    assert.deepEqual(ran, []);
  });
});
