/**
 * The shapes the API speaks, as the client hands them to callers: tasks as stored, tasks as
 * leased to a worker, and the answers of the pull API's routes.
 *
 * Request options are camelCase; the client writes them snake_case on the wire.
 */

export type TaskStatus =
  | 'created'
  | 'queued'
  | 'blocked'
  | 'running'
  | 'retry'
  | 'completed'
  | 'failed'
  | 'cancelled';

/** Statuses a task does not leave on its own. */
export const FINAL_STATUSES: readonly TaskStatus[] = ['completed', 'failed', 'cancelled'];

/** A task as `GET /api/v1/tasks/{id}` returns it (more keys may follow these). */
export interface Task {
  id: string;
  type: string;
  description: string;
  params: Record<string, unknown>;
  domain: string | null;
  drift_score: number;
  status: TaskStatus;
  /** `{success, path, handler, result}`; `result` is what the handler returned. */
  result: { success?: boolean; result?: unknown; [key: string]: unknown } | null;
  error: string | null;
  created_at: string;
  updated_at: string;
  [key: string]: unknown;
}

/** What `createTask` takes; each field maps to the create body's snake_case key. */
export interface CreateTask {
  type: string;
  params?: Record<string, unknown>;
  description?: string;
  domain?: string;
  driftScore?: number;
  /** Queue the task now (default true here; the server's own default leaves it `created`). */
  runImmediately?: boolean;
  maxAttempts?: number;
  timeoutSeconds?: number;
  attachedFactIds?: string[];
  queue?: string;
  priority?: number;
  /** Not before this time (a `Date` or an RFC 3339 string). */
  runAt?: Date | string;
  delaySeconds?: number;
  idempotencyKey?: string;
  dependsOn?: string[];
  runOnFailure?: boolean;
  /** A W3C trace context to create the task under (sent as the `traceparent` header). */
  traceparent?: string;
}

/** A registration's answer. */
export interface Registered {
  id: string;
  heartbeat_interval_seconds: number;
  default_lease_seconds: number;
  max_lease_seconds: number;
  state: WorkerState;
}

export type WorkerState = 'running' | 'quiet' | 'terminate';

export interface RegisterWorker {
  name: string;
  queues?: string[] | undefined;
  types?: string[] | undefined;
  concurrency?: number;
  labels?: Record<string, unknown> | undefined;
  clientName?: string;
  clientVersion?: string;
}

export interface ClaimOptions {
  workerId: string;
  /** Most tasks to take (1 to 100). */
  max?: number;
  /** How long to wait for a task when none is ready (at most 30000). */
  waitMs?: number;
  queues?: string[] | undefined;
  types?: string[] | undefined;
  leaseSeconds?: number | undefined;
  /** Per-queue caps: no task of a queue is claimed while the worker holds that many running. */
  queueConcurrency?: Record<string, number> | undefined;
  /** Aborts the long poll. */
  signal?: AbortSignal | undefined;
}

/** A task leased to a worker, as a claim hands it out (wire shape). */
export interface WireLeasedTask {
  id: string;
  attempt: number;
  max_attempts: number;
  lease_token: string;
  lease_expires_at: string;
  type: string;
  params: Record<string, unknown>;
  queue: string;
  priority: number;
  timeout_seconds: number | null;
  parents: string[];
  traceparent: string | null;
}

/** A task leased to this worker, as handlers see it. */
export interface LeasedTask {
  id: string;
  attempt: number;
  maxAttempts: number;
  type: string;
  params: Record<string, unknown>;
  queue: string;
  priority: number;
  timeoutSeconds: number | null;
  parents: string[];
  traceparent: string | null;
  leaseToken: string;
  leaseExpiresAt: Date;
}

/** A task heartbeat's answer. */
export interface LeaseState {
  /** Null when the task was cancelled. */
  lease_expires_at: string | null;
  cancel_requested: boolean;
}

/** How an attempt ended, as recorded. */
export interface AttemptEnded {
  task_id: string;
  status: TaskStatus;
}

/** One item of a batch completion: the attempt's lease and its result (any JSON). */
export interface Completion {
  taskId: string;
  leaseToken: string;
  result?: unknown;
}

/** What the server did with one item of a batch completion, in the order sent. */
export interface CompletionOutcome {
  task_id: string;
  /** `lease_lost`: the token is no longer the task's; nothing changed for it. */
  outcome: 'completed' | 'lease_lost';
}

/** The error object a failure reports. */
export interface TaskErrorInfo {
  type: string;
  message: string;
  stack?: string | undefined;
}

export function leasedTask(wire: WireLeasedTask): LeasedTask {
  return {
    id: wire.id,
    attempt: wire.attempt,
    maxAttempts: wire.max_attempts,
    type: wire.type,
    params: wire.params ?? {},
    queue: wire.queue,
    priority: wire.priority,
    timeoutSeconds: wire.timeout_seconds ?? null,
    parents: wire.parents ?? [],
    traceparent: wire.traceparent ?? null,
    leaseToken: wire.lease_token,
    leaseExpiresAt: new Date(wire.lease_expires_at),
  };
}
