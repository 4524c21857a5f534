/**
 * The heartbeat thread (a `worker_threads` thread of the `Worker`): it renews the leases the
 * worker holds and sends the worker's own heartbeat, with fetch calls of its own, so that a
 * handler that keeps the main thread's event loop busy cannot starve them.
 *
 * Invariants:
 * - Every interval it heartbeats each held lease (one request per lease at a time) and the
 *   worker; a task whose heartbeat says `cancel_requested` or answers 409 is reported once
 *   (`cancelled` / `lease_lost`) and forgotten.
 * - Self-fencing: a lease no heartbeat renewed before its expiry (as measured on this clock:
 *   from when the renewing heartbeat was sent, or when the claim's answer came, less a margin)
 *   is reported `lease_lost`, so the worker stops the handler before the server may hand the
 *   task to someone else.
 * - Messages from the main thread come in batches (arrays), in the order they were sent.
 * - It reports to the main thread through the port it was given, never through `parentPort`,
 *   so that the main thread can read reports synchronously (`receiveMessageOnPort`).
 */

import { parentPort, workerData, type MessagePort } from 'node:worker_threads';

import { Client } from './client.js';
import { LeaseLostError, NotFoundError } from './errors.js';
import type { HttpSettings } from './http.js';
import { holdKey, type ToThread, type FromThread } from './thread-messages.js';

interface Setup {
  http: HttpSettings;
  workerId: string;
  intervalMs: number;
  extendSeconds: number;
  marginMs: number;
  reports: MessagePort;
}

interface Held {
  taskId: string;
  token: string;
  /** Local clock (ms) after which the server may consider the lease gone. */
  expiresAt: number;
  inFlight: boolean;
}

const setup = workerData as Setup;
const client = new Client(setup.http);
const held = new Map<string, Held>();
let workerId = setup.workerId;
const requestTimeoutMs = Math.max(1_000, setup.intervalMs);
let stopped = false;

function report(message: FromThread): void {
  if (!stopped) setup.reports.postMessage(message);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function renew(key: string, lease: Held): Promise<void> {
  const { taskId, token: leaseToken } = lease;
  lease.inFlight = true;
  const sentAt = Date.now();
  try {
    const state = await client.heartbeat(taskId, lease.token, {
      extendSeconds: setup.extendSeconds,
      timeoutMs: requestTimeoutMs,
    });
    if (held.get(key) !== lease) return;
    if (state.cancel_requested) {
      held.delete(key);
      report({ kind: 'abort', taskId, leaseToken, reason: 'cancelled' });
    } else {
      lease.expiresAt = Math.max(lease.expiresAt, sentAt + setup.extendSeconds * 1000);
    }
  } catch (error) {
    if (held.get(key) !== lease) return;
    if (error instanceof LeaseLostError) {
      held.delete(key);
      report({ kind: 'abort', taskId, leaseToken, reason: 'lease_lost' });
    } else {
      report({ kind: 'problem', operation: 'task heartbeat', error: describe(error) });
    }
  } finally {
    lease.inFlight = false;
  }
}

async function workerBeat(): Promise<void> {
  const beatFor = workerId;
  try {
    const { state } = await client.workerHeartbeat(beatFor, { timeoutMs: requestTimeoutMs });
    report({ kind: 'state', state });
  } catch (error) {
    const operation = 'worker heartbeat';
    if (error instanceof NotFoundError) report({ kind: 'worker_missing', workerId: beatFor });
    else report({ kind: 'problem', operation, error: describe(error) });
  }
}

function tick(): void {
  void workerBeat();
  for (const [key, lease] of held) if (!lease.inFlight) void renew(key, lease);
}

/** Reports every lease about to run out unrenewed. */
function fence(): void {
  const now = Date.now();
  for (const [key, lease] of held) {
    if (now >= lease.expiresAt - setup.marginMs) {
      held.delete(key);
      report({ kind: 'abort', taskId: lease.taskId, leaseToken: lease.token, reason: 'lease_lost' });
    }
  }
}

const ticker = setInterval(tick, setup.intervalMs);
const fencer = setInterval(fence, Math.min(100, setup.intervalMs / 4));
tick();

parentPort?.on('message', (batch: ToThread[]) => batch.forEach(obey));

function obey(message: ToThread): void {
  switch (message.kind) {
    case 'hold':
      held.set(holdKey(message.taskId, message.leaseToken), {
        taskId: message.taskId,
        token: message.leaseToken,
        expiresAt: message.expiresAt,
        inFlight: false,
      });
      break;
    case 'renewed': {
      const lease = held.get(holdKey(message.taskId, message.leaseToken));
      if (lease) lease.expiresAt = Math.max(lease.expiresAt, message.expiresAt);
      break;
    }
    case 'drop':
      held.delete(holdKey(message.taskId, message.leaseToken));
      break;
    case 'worker':
      workerId = message.workerId;
      break;
    case 'stop':
      stopped = true;
      clearInterval(ticker);
      clearInterval(fencer);
      held.clear();
      setup.reports.close();
      parentPort?.close();
      break;
  }
}
