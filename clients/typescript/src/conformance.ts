/**
 * The conformance worker: one `Worker` of this client, driven by the environment, that writes
 * its lifecycle as JSON lines for the cross-client conformance suite.
 *
 * Environment: SEEDCORE_URL, SEEDCORE_TOKEN, CONFORMANCE_NAME, CONFORMANCE_QUEUES (default
 * `default`), CONFORMANCE_CONCURRENCY (4), CONFORMANCE_LEASE_SECONDS (server's default),
 * CONFORMANCE_GRACE_SECONDS (5), CONFORMANCE_LOG (the file to append to; stdout without it).
 *
 * Invariant: each line is one `write()` on a file opened for appending, so lines of several
 * processes sharing the file never interleave. It handles `conformance.work` only: wait
 * `params.seconds` in steps of at most 50 ms, then answer `{"worker": NAME}`; when aborted,
 * make one late completion with the same lease token and log the status it got.
 */

import { closeSync, openSync, writeSync } from 'node:fs';

import { Client, sleep } from './client.js';
import { SeedcoreError } from './errors.js';
import type { LeasedTask } from './types.js';
import { Worker, type TaskContext, type WorkerEvent } from './worker.js';

const env = process.env;
const name = env.CONFORMANCE_NAME || `ts-${process.pid}`;
const logFd = env.CONFORMANCE_LOG ? openSync(env.CONFORMANCE_LOG, 'a') : 1;

function log(event: string, fields: Record<string, unknown> = {}): void {
  const line = { event, ...fields, worker: name, pid: process.pid, ts: Date.now() / 1000 };
  writeSync(logFd, `${JSON.stringify(line)}\n`);
}

function numberFrom(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : undefined;
}

const client = new Client({
  url: env.SEEDCORE_URL ?? 'http://127.0.0.1:8000',
  token: env.SEEDCORE_TOKEN || undefined,
});

async function work(task: LeasedTask, ctx: TaskContext): Promise<unknown> {
  const seconds = Number(task.params.seconds ?? 0) || 0;
  const end = Date.now() + seconds * 1000;
  for (;;) {
    if (ctx.signal.aborted) return lateCompletion(task);
    const left = end - Date.now();
    if (left <= 0) return { worker: name };
    await sleep(Math.min(50, left));
  }
}

/** Completes an aborted task anyway, to show the server refuses it. */
async function lateCompletion(task: LeasedTask): Promise<void> {
  let status: number | null = null;
  let error: string | undefined;
  try {
    await client.complete(task.id, task.leaseToken, { worker: name, late: true });
    status = 200;
  } catch (thrown) {
    if (thrown instanceof SeedcoreError) status = thrown.status;
    else error = thrown instanceof Error ? thrown.message : String(thrown);
  }
  log(
    'late_completion',
    error === undefined ? { task: task.id, status } : { task: task.id, status, error },
  );
}

/** The worker's events as the protocol's lines. */
function onEvent(event: WorkerEvent): void {
  switch (event.event) {
    case 'registered':
      return log('registered', { worker_id: event.worker_id });
    case 'started':
    case 'completed':
    case 'failed':
      return log(event.event, { task: event.task, attempt: event.attempt });
    case 'aborted':
      return log('aborted', { task: event.task, attempt: event.attempt, reason: event.reason });
    case 'released':
      return log('released', { task: event.task });
    case 'state':
      return log('state', { state: event.state });
    case 'stopped':
      return log('stopped');
    default:
      return;
  }
}

async function main(): Promise<number> {
  const queues = (env.CONFORMANCE_QUEUES ?? 'default')
    .split(',')
    .map((q) => q.trim())
    .filter((q) => q !== '');
  const worker = new Worker(client, {
    name,
    queues: queues.length > 0 ? queues : undefined,
    concurrency: numberFrom(env.CONFORMANCE_CONCURRENCY) ?? 4,
    leaseSeconds: numberFrom(env.CONFORMANCE_LEASE_SECONDS),
    graceSeconds: numberFrom(env.CONFORMANCE_GRACE_SECONDS) ?? 5,
    onEvent,
  });
  worker.register('conformance.work', work);
  worker.on('network_error', (event: WorkerEvent) => {
    process.stderr.write(`${name}: ${event.operation}: ${event.error}\n`);
  });
  try {
    await worker.run();
    return 0;
  } catch (error) {
    process.stderr.write(`${name}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

const code = await main();
if (logFd !== 1) closeSync(logFd);
process.exit(code);
