/**
 * The messages between the `Worker` (main thread) and its heartbeat thread. Times are the
 * local clock's milliseconds (`Date.now()`), never the server's.
 */

import type { WorkerState } from './types.js';

/** Why a handler's signal was aborted. */
export type AbortReason = 'lease_lost' | 'cancelled' | 'shutdown';

/**
 * What a held task is known by on both sides: its id and lease token together (the tasks of
 * one claim share a token; a task released and claimed again while its first handler still
 * runs is held twice, each on its own lease).
 */
export function holdKey(taskId: string, leaseToken: string): string {
  return `${taskId} ${leaseToken}`;
}

/** Main thread → heartbeat thread. */
export type ToThread =
  | { kind: 'hold'; taskId: string; leaseToken: string; expiresAt: number }
  | { kind: 'renewed'; taskId: string; leaseToken: string; expiresAt: number }
  | { kind: 'drop'; taskId: string; leaseToken: string }
  | { kind: 'worker'; workerId: string }
  | { kind: 'stop' };

/** Heartbeat thread → main thread. */
export type FromThread =
  | { kind: 'abort'; taskId: string; leaseToken: string; reason: AbortReason }
  | { kind: 'state'; state: WorkerState }
  /** The server did not know `workerId` (the id this heartbeat was sent for). */
  | { kind: 'worker_missing'; workerId: string }
  | { kind: 'problem'; operation: string; error: string };
