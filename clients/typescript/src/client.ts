/**
 * `Client`: one object per server, with the producer's calls (create, read, wait for, cancel
 * tasks) and the pull API's low-level worker calls, each a single HTTP request.
 *
 * Invariant: methods map one-to-one onto routes and never retry; retrying is the caller's
 * choice (the `Worker` makes it with back-off). Errors are those of `errors.ts`.
 */

import { WaitTimeoutError } from './errors.js';
import { Http, type HttpSettings } from './http.js';
import {
  FINAL_STATUSES,
  leasedTask,
  type AttemptEnded,
  type ClaimOptions,
  type Completion,
  type CompletionOutcome,
  type CreateTask,
  type LeasedTask,
  type LeaseState,
  type RegisterWorker,
  type Registered,
  type Task,
  type TaskErrorInfo,
  type TaskStatus,
  type WireLeasedTask,
  type WorkerState,
} from './types.js';
import { CLIENT_NAME, CLIENT_VERSION } from './version.js';

export interface ClientOptions extends HttpSettings {}

export interface WaitOptions {
  /** Give up (rejecting with `WaitTimeoutError`) after this long; default: wait for ever. */
  timeoutMs?: number;
  /** The longest pause between two looks at the task (default 500 ms; the first is 20 ms). */
  pollMs?: number;
  signal?: AbortSignal;
}

export interface FailOptions {
  /** Another attempt may succeed (default false: the task fails). */
  retryable?: boolean;
  /** Wait this long before the next attempt instead of the retry policy's backoff. */
  retryAfterSeconds?: number;
}

const API = '/api/v1';

export class Client {
  readonly http: Http;

  constructor(options: ClientOptions) {
    this.http = new Http(options);
  }

  // Producer API.

  async createTask(task: CreateTask): Promise<Task> {
    const headers: Record<string, string> = {};
    if (task.traceparent) headers.traceparent = task.traceparent;
    return this.http.request<Task>('POST', `${API}/tasks`, createBody(task), { headers });
  }

  /** Creates many tasks in one transaction (up to 10,000); resolves with their ids in order. */
  async createTasks(tasks: CreateTask[]): Promise<string[]> {
    const items = tasks.map(createBody);
    const answer = await this.http.request<{ ids: string[] }>('POST', `${API}/tasks/bulk`, {
      tasks: items,
    });
    return answer.ids;
  }

  async getTask(id: string): Promise<Task> {
    return this.http.request<Task>('GET', `${API}/tasks/${enc(id)}`);
  }

  async cancelTask(id: string): Promise<Task> {
    return this.http.request<Task>('POST', `${API}/tasks/${enc(id)}/cancel`);
  }

  /** Resolves with the task once it is completed, failed or cancelled. */
  async wait(id: string, options: WaitOptions = {}): Promise<Task> {
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    const longest = options.pollMs ?? 500;
    let pause = Math.min(20, longest);
    for (;;) {
      const status = await this.http.request<{ status: TaskStatus }>(
        'GET',
        `${API}/tasks/${enc(id)}/status`,
        undefined,
        { signal: options.signal },
      );
      if (FINAL_STATUSES.includes(status.status)) return this.getTask(id);
      const left = deadline - Date.now();
      if (left <= 0) throw new WaitTimeoutError(id, options.timeoutMs ?? 0);
      await sleep(Math.min(pause, left), options.signal);
      pause = Math.min(pause * 2, longest);
    }
  }

  // Worker API (low level).

  async registerWorker(registration: RegisterWorker): Promise<Registered> {
    return this.http.request<Registered>('POST', `${API}/workers`, {
      name: registration.name,
      queues: registration.queues ?? null,
      types: registration.types ?? null,
      concurrency: registration.concurrency ?? 1,
      labels: registration.labels ?? {},
      client_name: registration.clientName ?? CLIENT_NAME,
      client_version: registration.clientVersion ?? CLIENT_VERSION,
    });
  }

  /** Takes up to `max` tasks, waiting up to `waitMs` for one; none (`[]`) after a 204. */
  async claim(options: ClaimOptions): Promise<LeasedTask[]> {
    const waitMs = options.waitMs ?? 0;
    const body: Record<string, unknown> = {
      worker_id: options.workerId,
      max: options.max ?? 1,
      wait_ms: waitMs,
    };
    if (options.queues) body.queues = options.queues;
    if (options.types) body.types = options.types;
    if (options.leaseSeconds !== undefined) body.lease_seconds = options.leaseSeconds;
    const limits = Object.entries(options.queueConcurrency ?? {});
    if (limits.length > 0) body.queue_concurrency = limits.map(([queue, n]) => `${queue}=${n}`);
    const answer = await this.http.request<{ tasks: WireLeasedTask[] } | undefined>(
      'POST',
      `${API}/tasks/claim`,
      body,
      // The long poll may use all of wait_ms before the server even starts answering.
      { timeoutMs: waitMs + this.http.timeoutMs, signal: options.signal },
    );
    return (answer?.tasks ?? []).map(leasedTask);
  }

  async heartbeat(
    taskId: string,
    leaseToken: string,
    options: {
      extendSeconds?: number | undefined;
      progress?: number | undefined;
      timeoutMs?: number;
    } = {},
  ): Promise<LeaseState> {
    const body: Record<string, unknown> = { lease_token: leaseToken };
    if (options.extendSeconds !== undefined) body.extend_seconds = options.extendSeconds;
    if (options.progress !== undefined) body.progress = options.progress;
    const request = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
    return this.http.request<LeaseState>(
      'POST',
      `${API}/tasks/${enc(taskId)}/heartbeat`,
      body,
      request,
    );
  }

  async complete(taskId: string, leaseToken: string, result: unknown): Promise<AttemptEnded> {
    return this.http.request<AttemptEnded>('POST', `${API}/tasks/${enc(taskId)}/complete`, {
      lease_token: leaseToken,
      result: result === undefined ? null : result,
    });
  }

  /**
   * Completes up to 100 attempts of distinct tasks in one request; one outcome per item, in
   * order. A repeat with the same token answers `completed` again. A malformed body is a
   * `ValidationError` for the whole request (nothing recorded); a server without the route
   * answers 404 or 405.
   */
  async completeMany(completions: Completion[]): Promise<CompletionOutcome[]> {
    const body = {
      completions: completions.map((c) => ({
        task_id: c.taskId,
        lease_token: c.leaseToken,
        result: c.result === undefined ? null : c.result,
      })),
    };
    const answer = await this.http.request<{ items: CompletionOutcome[] }>(
      'POST',
      `${API}/tasks/complete`,
      body,
    );
    return answer.items;
  }

  async fail(
    taskId: string,
    leaseToken: string,
    error: TaskErrorInfo,
    options: FailOptions = {},
  ): Promise<AttemptEnded> {
    const body: Record<string, unknown> = {
      lease_token: leaseToken,
      error,
      retryable: options.retryable ?? false,
    };
    if (options.retryAfterSeconds !== undefined) {
      body.retry_after_seconds = options.retryAfterSeconds;
    }
    return this.http.request<AttemptEnded>('POST', `${API}/tasks/${enc(taskId)}/fail`, body);
  }

  async release(taskId: string, leaseToken: string): Promise<AttemptEnded> {
    return this.http.request<AttemptEnded>('POST', `${API}/tasks/${enc(taskId)}/release`, {
      lease_token: leaseToken,
    });
  }

  /** Tells the server the worker is alive; answers what its operator asks of it. */
  async workerHeartbeat(
    workerId: string,
    options: { timeoutMs?: number } = {},
  ): Promise<{ state: WorkerState }> {
    return this.http.request<{ state: WorkerState }>(
      'POST',
      `${API}/workers/${enc(workerId)}/heartbeat`,
      undefined,
      options,
    );
  }

  /** Operator call: the worker finishes what it holds and claims nothing more. */
  async quietWorker(workerId: string): Promise<unknown> {
    return this.http.request('POST', `${API}/workers/${enc(workerId)}/quiet`);
  }

  /** Operator call: the worker releases what it holds and stops. */
  async terminateWorker(workerId: string): Promise<unknown> {
    return this.http.request('POST', `${API}/workers/${enc(workerId)}/terminate`);
  }
}

function createBody(task: CreateTask): Record<string, unknown> {
  const body: Record<string, unknown> = {
    type: task.type,
    run_immediately: task.runImmediately ?? true,
  };
  const optional: [string, unknown][] = [
    ['params', task.params],
    ['description', task.description],
    ['domain', task.domain],
    ['drift_score', task.driftScore],
    ['max_attempts', task.maxAttempts],
    ['timeout_seconds', task.timeoutSeconds],
    ['attached_fact_ids', task.attachedFactIds],
    ['queue', task.queue],
    ['priority', task.priority],
    ['run_at', task.runAt instanceof Date ? task.runAt.toISOString() : task.runAt],
    ['delay_seconds', task.delaySeconds],
    ['idempotency_key', task.idempotencyKey],
    ['depends_on', task.dependsOn],
    ['run_on_failure', task.runOnFailure],
  ];
  for (const [key, value] of optional) if (value !== undefined) body[key] = value;
  return body;
}

function enc(id: string): string {
  return encodeURIComponent(id);
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', stop, { once: true });
  });
}
