/**
 * `Worker`: runs registered handlers on tasks it claims over the pull API.
 *
 * It registers, then claims in batches sized by its free slots with one long poll at a time,
 * runs each task's handler, and reports the outcome under the task's lease. Leases and the
 * worker's own heartbeat are kept by a thread of their own (`heartbeat-thread.ts`).
 *
 * A handler's slot frees as it returns. Its result joins the completions waiting to be sent:
 * one batch completion request (up to 100) is in flight at a time, and what arrives meanwhile
 * goes in the next. A server without the batch route (404/405) gets one request per task.
 *
 * Invariants:
 * - A task whose signal was aborted (lease lost, cancelled, shutdown) is never completed or
 *   failed by the Worker: before every report it reads the heartbeat thread's pending news
 *   synchronously, and a result it may not send is dropped (event `result_dropped`).
 * - `completed` / `failed` events follow only an answer 2xx from the server, and `completed`
 *   only an answer `completed` for that task; its lease is kept until then.
 * - On stop (SIGTERM, SIGINT, `stop()`, or the server's `terminate`) it claims nothing more,
 *   gives handlers `graceSeconds`, sends the completions waiting, then releases the rest,
 *   then aborts their signals (so a
 *   handler's own late call finds the lease already gone).
 * - No loop ever throws out of `run()` for a network failure: it backs off and tries again.
 *   Listener errors are swallowed; no promise is left to reject unhandled.
 */

import { EventEmitter } from 'node:events';
import {
  MessageChannel,
  Worker as Thread,
  receiveMessageOnPort,
  type MessagePort,
} from 'node:worker_threads';

import { Backoff } from './backoff.js';
import { sleep, type Client } from './client.js';
import {
  LeaseLostError,
  NotFoundError,
  PermanentError,
  SeedcoreError,
  isRetryable,
} from './errors.js';
import { holdKey, type AbortReason, type FromThread, type ToThread } from './thread-messages.js';
import type {
  CompletionOutcome,
  LeasedTask,
  LeaseState,
  Registered,
  TaskErrorInfo,
  WorkerState,
} from './types.js';

export type { AbortReason } from './thread-messages.js';

/** What a handler gets besides its task. */
export interface TaskContext {
  /** Aborted, with a `TaskAbortedError` as its reason, when the handler must stop. */
  signal: AbortSignal;
  /** Renews the lease now (the Worker renews it anyway) and reports progress (0 to 1). */
  heartbeat(progress?: number): Promise<LeaseState>;
  /** The worker's id as registered. */
  workerId: string;
}

export type Handler = (task: LeasedTask, ctx: TaskContext) => unknown;

export interface WorkerOptions {
  /** The worker's name, for people. */
  name: string;
  /** Queues to claim from (default: every queue). */
  queues?: string[];
  /** Task types to claim (default: the types with a registered handler). */
  types?: string[];
  /** Handlers run at once (default 4). */
  concurrency?: number;
  /** Per-queue caps within that, e.g. `{ emails: 4 }`: at most 4 of its tasks at once. */
  queueConcurrency?: Record<string, number>;
  /** Lease asked for on each claim (default: the server's). */
  leaseSeconds?: number;
  /** On stop, how long running handlers may take before they are aborted (default 30). */
  graceSeconds?: number;
  labels?: Record<string, unknown>;
  /** How long one claim waits for a task (default 20000 ms, at most 30000). */
  waitMs?: number;
  /** Stop gracefully on SIGTERM and SIGINT while running (default true). */
  handleSignals?: boolean;
  /** Called with every lifecycle event (as are `on(name)` and `on('event')` listeners). */
  onEvent?: (event: WorkerEvent) => void;
}

/** A lifecycle event: `event` names it; the other keys depend on it. */
export interface WorkerEvent {
  event: WorkerEventName;
  [key: string]: unknown;
}

export type WorkerEventName =
  | 'registered'
  | 'state'
  | 'started'
  | 'completed'
  | 'failed'
  | 'aborted'
  | 'result_dropped'
  | 'released'
  | 'network_error'
  | 'stopped';

/** The reason a handler's signal carries. */
export class TaskAbortedError extends Error {
  readonly reason: AbortReason;

  constructor(reason: AbortReason) {
    super(`task aborted: ${reason}`);
    this.name = 'TaskAbortedError';
    this.reason = reason;
  }
}

interface Running {
  task: LeasedTask;
  controller: AbortController;
  aborted: AbortReason | null;
  handlerDone: boolean;
  settled: Promise<void>;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** What became of a result sent in a batch; `single`: send it alone (the server's choice). */
type Verdict =
  | { kind: 'completed'; batch: number }
  | { kind: 'lease_lost' }
  | { kind: 'dropped' }
  | { kind: 'single' };

interface Waiting {
  entry: Running;
  value: unknown;
  settle: (verdict: Verdict) => void;
}

const MAX_CLAIM = 100;
/** Most completions one batch request carries (the server's bound). */
const MAX_BATCH = 100;
/** How long stop waits for aborted handlers to return before it resolves anyway. */
const ABORTED_RETURN_MS = 5_000;
/** Attempts to hand a task back on shutdown. */
const RELEASE_TRIES = 3;

export class Worker extends EventEmitter {
  readonly client: Client;
  private readonly options: WorkerOptions;
  private readonly concurrency: number;
  private readonly handlers = new Map<string, Handler>();
  /** Held tasks by `holdKey` (id and lease token). */
  private readonly running = new Map<string, Running>();
  /** Handlers running now: the slots taken (`running` also holds results being sent). */
  private busy = 0;
  /** Results waiting for the next batch, and the batches being sent (null when idle). */
  private waiting: Waiting[] = [];
  private sending: Promise<void> | null = null;
  /** False once the server answered that it has no batch route. */
  private batches = true;
  private registered: Registered | null = null;
  private state: WorkerState | null = null;
  private leaseSeconds = 30;
  private thread: Thread | null = null;
  private outbox: ToThread[] = [];
  private forgotten = false;
  private reregistering = false;
  private reports: MessagePort | null = null;
  private claiming: AbortController | null = null;
  private stopping = false;
  private stopRequested: Promise<void>;
  private requestStop!: () => void;
  private wake: (() => void) | null = null;
  private lifecycle: Promise<void> | null = null;

  constructor(client: Client, options: WorkerOptions) {
    super();
    this.client = client;
    this.options = options;
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
    this.stopRequested = new Promise((resolve) => (this.requestStop = resolve));
  }

  /** Runs `handler` for tasks of `type`; what it returns (or resolves to) is the result. */
  register(type: string, handler: Handler): this {
    this.handlers.set(type, handler);
    return this;
  }

  /** The id the server gave at registration (null before). */
  get workerId(): string | null {
    return this.registered?.id ?? null;
  }

  /** Registers and works until stopped; resolves once every task is finished or handed back. */
  run(): Promise<void> {
    if (!this.lifecycle) this.lifecycle = this.live();
    return this.lifecycle;
  }

  /** Stops gracefully (see `graceSeconds`); resolves when `run()` does. */
  stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.requestStop();
      this.claiming?.abort(new Error('stopping'));
      this.notify();
    }
    return this.lifecycle ?? Promise.resolve();
  }

  private async live(): Promise<void> {
    const onSignal = () => void this.stop();
    const signals = this.options.handleSignals ?? true;
    if (signals) {
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    }
    try {
      const types = this.options.types ?? [...this.handlers.keys()];
      if (types.length === 0) throw new Error('register a handler before running the worker');
      this.registered = await this.registerPatiently(types);
      if (!this.registered) return;
      this.leaseSeconds = this.options.leaseSeconds ?? this.registered.default_lease_seconds;
      this.fire('registered', { worker_id: this.registered.id });
      this.startThread(this.registered);
      await this.claimLoop(types);
      await this.drain();
    } finally {
      this.stopThread();
      if (signals) {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
      this.stopping = true;
      this.fire('stopped', {});
    }
  }

  private async registerPatiently(types: string[]): Promise<Registered | null> {
    const backoff = new Backoff();
    while (!this.stopping) {
      try {
        return await this.client.registerWorker({
          name: this.options.name,
          queues: this.options.queues,
          types,
          concurrency: this.concurrency,
          labels: this.options.labels,
        });
      } catch (error) {
        if (!isRetryable(error)) throw error;
        await this.pause(backoff.next(), 'register', error);
      }
    }
    return null;
  }

  private startThread(registered: Registered): void {
    const channel = new MessageChannel();
    const intervalMs = registered.heartbeat_interval_seconds * 1000;
    const leaseMs = this.leaseSeconds * 1000;
    this.thread = new Thread(new URL('./heartbeat-thread.js', import.meta.url), {
      workerData: {
        http: this.client.http.settings(),
        workerId: registered.id,
        intervalMs,
        extendSeconds: this.leaseSeconds,
        marginMs: Math.min(1_000, Math.max(100, leaseMs / 10)),
        reports: channel.port2,
      },
      transferList: [channel.port2],
    });
    const thread = this.thread;
    thread.on('error', (error) =>
      this.fire('network_error', { operation: 'heartbeat thread', error: String(error) }),
    );
    thread.on('exit', () => this.onThreadExit(thread, registered));
    this.reports = channel.port1;
    this.reports.on('message', (message: FromThread) => this.onReport(message));
  }

  /**
   * A thread that ended unasked renewed nothing since: every lease it kept may be gone, so
   * their handlers are aborted, and a new thread keeps the leases claimed from now on.
   */
  private onThreadExit(thread: Thread, registered: Registered): void {
    if (this.thread !== thread) return;
    this.readPendingReports();
    this.reports?.close();
    this.reports = null;
    this.thread = null;
    this.outbox = [];
    for (const entry of this.running.values()) this.abort(entry, 'lease_lost');
    if (!this.stopping) this.startThread(this.registered ?? registered);
  }

  private stopThread(): void {
    this.flush();
    this.thread?.postMessage([{ kind: 'stop' }]);
    this.reports?.close();
    this.reports = null;
    const thread = this.thread;
    this.thread = null;
    // Its last requests may still be open; it has nothing left worth waiting for.
    void thread?.terminate().catch(() => undefined);
  }

  /** Queues a message for the thread; those of one turn of the event loop go as one batch. */
  private tell(message: ToThread): void {
    if (!this.thread) return;
    this.outbox.push(message);
    if (this.outbox.length === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const batch = this.outbox;
    this.outbox = [];
    if (batch.length > 0) this.thread?.postMessage(batch);
  }

  /** Handles what the heartbeat thread has reported and the event loop has not yet delivered. */
  private readPendingReports(): void {
    if (!this.reports) return;
    for (;;) {
      const pending = receiveMessageOnPort(this.reports);
      if (!pending) return;
      this.onReport(pending.message as FromThread);
    }
  }

  private onReport(message: FromThread): void {
    switch (message.kind) {
      case 'abort': {
        const entry = this.running.get(holdKey(message.taskId, message.leaseToken));
        if (entry) this.abort(entry, message.reason);
        break;
      }
      case 'state':
        this.onState(message.state);
        break;
      case 'worker_missing':
        this.fire('network_error', { operation: 'worker heartbeat', error: 'worker not found' });
        // A registration under way, or made since that heartbeat left, answers it already.
        if (this.reregistering || message.workerId !== this.registered?.id) break;
        this.forgotten = true;
        this.notify();
        break;
      case 'problem':
        this.fire('network_error', { operation: message.operation, error: message.error });
        break;
    }
  }

  private onState(state: WorkerState): void {
    if (state === this.state) return;
    this.state = state;
    this.fire('state', { state });
    if (state === 'terminate') void this.stop();
    this.notify();
  }

  private async claimLoop(types: string[]): Promise<void> {
    const backoff = new Backoff();
    while (!this.stopping) {
      if (this.forgotten) {
        await this.registerAgain(types);
        continue;
      }
      const free = this.concurrency - this.busy;
      if (this.state === 'quiet' || free <= 0) {
        await this.changed();
        continue;
      }
      this.claiming = new AbortController();
      try {
        const tasks = await this.client.claim({
          workerId: this.registered?.id ?? '',
          max: Math.min(free, MAX_CLAIM),
          waitMs: this.options.waitMs ?? 20_000,
          queues: this.options.queues,
          types,
          leaseSeconds: this.options.leaseSeconds,
          queueConcurrency: this.options.queueConcurrency,
          signal: this.claiming.signal,
        });
        backoff.reset();
        const answeredAt = Date.now();
        for (const task of tasks) this.start(task, answeredAt);
        // Handlers start on the next microtask; one may then block this thread for long, so
        // the thread must learn of their leases now.
        this.flush();
      } catch (error) {
        if (this.stopping) break;
        if (error instanceof NotFoundError) this.forgotten = true;
        else await this.pause(backoff.next(), 'claim', error);
      } finally {
        this.claiming = null;
      }
    }
  }

  /**
   * The server no longer knows this worker (it forgets one idle for a day, or lost its
   * database): register anew and carry on. Leases held are the tasks' own and stay renewed.
   */
  private async registerAgain(types: string[]): Promise<void> {
    this.forgotten = false;
    this.reregistering = true;
    let registered: Registered | null;
    try {
      registered = await this.registerPatiently(types);
    } finally {
      this.reregistering = false;
    }
    if (!registered) return;
    this.registered = registered;
    this.fire('registered', { worker_id: registered.id });
    this.tell({ kind: 'worker', workerId: registered.id });
    this.flush();
  }

  /** Waits `ms` (or until stop), after an error worth an event. */
  private async pause(ms: number, operation: string, error: unknown): Promise<void> {
    this.fire('network_error', { operation, error: describe(error), retry_in_ms: Math.round(ms) });
    await within(this.stopRequested, ms);
  }

  /** Resolves at the next change a waiting loop cares about: a free slot, a state, a stop. */
  private changed(): Promise<void> {
    return new Promise((resolve) => {
      const previous = this.wake;
      this.wake = () => {
        previous?.();
        resolve();
      };
    });
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private start(task: LeasedTask, answeredAt: number): void {
    const entry: Running = {
      task,
      controller: new AbortController(),
      aborted: null,
      handlerDone: false,
      settled: Promise.resolve(),
    };
    const key = holdKey(task.id, task.leaseToken);
    this.running.set(key, entry);
    this.busy++;
    // The server starts the lease as it answers (a long poll may have waited for long before),
    // so the answer's arrival is the latest moment it can have started; the thread's margin
    // covers the answer's time on the way.
    const expiresAt = answeredAt + this.leaseSeconds * 1000;
    this.tell({ kind: 'hold', taskId: task.id, leaseToken: task.leaseToken, expiresAt });
    entry.settled = this.process(entry)
      .catch((error) =>
        this.fire('network_error', { operation: 'task', task: task.id, error: describe(error) }),
      )
      .finally(() => {
        this.running.delete(key);
        this.tell({ kind: 'drop', taskId: task.id, leaseToken: task.leaseToken });
        this.notify();
      });
  }

  private async process(entry: Running): Promise<void> {
    const { task } = entry;
    await Promise.resolve();
    this.fire('started', { task: task.id, attempt: task.attempt, type: task.type });
    let outcome: Outcome;
    try {
      const handler = this.handlers.get(task.type);
      if (!handler) throw unsupported(task.type);
      outcome = { ok: true, value: await handler(task, this.context(entry)) };
    } catch (error) {
      outcome = { ok: false, error };
    }
    entry.handlerDone = true;
    this.busy--;
    this.notify();
    await this.report(entry, outcome);
  }

  private context(entry: Running): TaskContext {
    const { task } = entry;
    return {
      signal: entry.controller.signal,
      workerId: this.registered?.id ?? '',
      heartbeat: async (progress?: number) => {
        const sentAt = Date.now();
        try {
          const state = await this.client.heartbeat(task.id, task.leaseToken, {
            extendSeconds: this.leaseSeconds,
            progress,
          });
          if (state.cancel_requested) this.abort(entry, 'cancelled');
          else
            this.tell({
              kind: 'renewed',
              taskId: task.id,
              leaseToken: task.leaseToken,
              expiresAt: sentAt + this.leaseSeconds * 1000,
            });
          return state;
        } catch (error) {
          if (error instanceof LeaseLostError) this.abort(entry, 'lease_lost');
          throw error;
        }
      },
    };
  }

  /** Sends the outcome under the lease, retrying while the lease may still be good. */
  private async report(entry: Running, outcome: Outcome): Promise<void> {
    const { task } = entry;
    if (outcome.ok && this.batches) {
      const verdict = await this.completeInBatch(entry, outcome.value);
      switch (verdict.kind) {
        case 'completed':
          return this.fire('completed', {
            task: task.id,
            attempt: task.attempt,
            type: task.type,
            batch: verdict.batch,
          });
        case 'lease_lost':
          return this.drop(entry, 'lease_lost');
        case 'dropped':
          return this.drop(entry, entry.aborted ?? 'lease_lost');
      }
    }
    const backoff = new Backoff();
    for (;;) {
      this.readPendingReports();
      if (entry.aborted) return this.drop(entry, entry.aborted);
      try {
        if (outcome.ok) {
          await this.client.complete(task.id, task.leaseToken, outcome.value);
          return this.fire('completed', {
            task: task.id,
            attempt: task.attempt,
            type: task.type,
            batch: 1,
          });
        }
        const { error, retryable, retryAfterSeconds } = failureOf(outcome.error);
        const options =
          retryAfterSeconds === undefined ? { retryable } : { retryable, retryAfterSeconds };
        const ended = await this.client.fail(task.id, task.leaseToken, error, options);
        return this.fire('failed', {
          task: task.id,
          attempt: task.attempt,
          type: task.type,
          status: ended.status,
          error_type: error.type,
          message: error.message,
        });
      } catch (error) {
        if (error instanceof LeaseLostError) return this.drop(entry, 'lease_lost');
        if (isRetryable(error)) {
          await this.pause(backoff.next(), outcome.ok ? 'complete' : 'fail', error);
        } else if (outcome.ok && error instanceof SeedcoreError) {
          // The server refused the result itself (e.g. too large): the attempt fails instead.
          outcome = { ok: false, error: new PermanentError(`result refused: ${error.message}`) };
        } else {
          this.fire('network_error', { operation: 'fail', task: task.id, error: describe(error) });
          return;
        }
      }
    }
  }

  /** Hands a result to the batches; starts sending at the end of this turn if idle. */
  private completeInBatch(entry: Running, value: unknown): Promise<Verdict> {
    return new Promise((settle) => {
      this.waiting.push({ entry, value, settle });
      if (!this.sending) this.sending = this.sendWaiting();
    });
  }

  /**
   * Sends batches until none waits: one request in flight, the next gathering meanwhile. It
   * clears `sending` in the same step that finds nothing waiting, so no result is left behind.
   */
  private async sendWaiting(): Promise<void> {
    // The results of handlers that finished in this turn of the event loop go together.
    await new Promise((resolve) => setImmediate(resolve));
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, MAX_BATCH);
        try {
          await this.sendBatch(batch);
        } catch (error) {
          this.fire('network_error', { operation: 'complete', error: describe(error) });
          for (const item of batch) item.settle({ kind: 'single' });
        }
      }
    } finally {
      this.sending = null;
    }
  }

  /**
   * Sends one batch until the server answered: each task is fenced right before each try (a
   * fenced one is dropped). A refusal of the whole batch, or a server without the route,
   * sends each result alone so that each gets its own verdict.
   */
  private async sendBatch(batch: Waiting[]): Promise<void> {
    const backoff = new Backoff();
    for (;;) {
      this.readPendingReports();
      for (const item of batch) if (item.entry.aborted) item.settle({ kind: 'dropped' });
      batch = batch.filter((item) => !item.entry.aborted);
      if (batch.length === 0) return;
      let outcomes: CompletionOutcome[];
      try {
        outcomes = await this.client.completeMany(
          batch.map(({ entry, value }) => ({
            taskId: entry.task.id,
            leaseToken: entry.task.leaseToken,
            result: value,
          })),
        );
      } catch (error) {
        if (isRetryable(error)) {
          await this.pause(backoff.next(), 'complete', error);
          continue;
        }
        if (error instanceof SeedcoreError && (error.status === 404 || error.status === 405)) {
          this.batches = false;
        }
        for (const item of batch) item.settle({ kind: 'single' });
        return;
      }
      // The answers come in the order sent; a task may be in the batch twice (two leases).
      for (const [i, item] of batch.entries()) {
        const verdict = outcomes[i];
        const completed = verdict?.task_id === item.entry.task.id && verdict.outcome === 'completed';
        item.settle(
          completed ? { kind: 'completed', batch: batch.length } : { kind: 'lease_lost' },
        );
      }
      return;
    }
  }

  private drop(entry: Running, reason: AbortReason): void {
    const { task } = entry;
    this.fire('result_dropped', { task: task.id, attempt: task.attempt, reason });
  }

  private abort(entry: Running, reason: AbortReason): void {
    if (entry.aborted) return;
    entry.aborted = reason;
    if (entry.handlerDone) return;
    this.fire('aborted', { task: entry.task.id, attempt: entry.task.attempt, reason });
    entry.controller.abort(new TaskAbortedError(reason));
  }

  /** After the claim loop: grace for running handlers, then release and abort the rest. */
  private async drain(): Promise<void> {
    const graceMs = (this.options.graceSeconds ?? 30) * 1000;
    await within(this.allSettled(), graceMs);
    while (this.sending) await this.sending;
    const late = [...this.running.values()].filter((e) => !e.handlerDone && !e.aborted);
    await Promise.all(late.map((entry) => this.handBack(entry)));
    await within(this.allSettled(), ABORTED_RETURN_MS);
  }

  private allSettled(): Promise<unknown> {
    return Promise.all([...this.running.values()].map((e) => e.settled));
  }

  /** Releases a task whose handler outlived the grace, then aborts the handler. */
  private async handBack(entry: Running): Promise<void> {
    const { task } = entry;
    entry.aborted = 'shutdown';
    this.fire('aborted', { task: task.id, attempt: task.attempt, reason: 'shutdown' });
    const backoff = new Backoff();
    for (let tries = 1; ; tries++) {
      try {
        await this.client.release(task.id, task.leaseToken);
        this.fire('released', { task: task.id, attempt: task.attempt });
        break;
      } catch (error) {
        // A lease already gone needs no release; the server rescues an unreleased one.
        if (!isRetryable(error) || tries >= RELEASE_TRIES) {
          this.fire('network_error', {
            operation: 'release',
            task: task.id,
            error: describe(error),
          });
          break;
        }
        await sleep(backoff.next());
      }
    }
    entry.controller.abort(new TaskAbortedError('shutdown'));
  }

  private fire(name: WorkerEventName, fields: Record<string, unknown>): void {
    const event: WorkerEvent = { event: name, ...fields };
    try {
      this.options.onEvent?.(event);
    } catch {
      // A listener's failure is its own; the worker goes on.
    }
    for (const channel of [name, 'event']) {
      try {
        this.emit(channel, event);
      } catch {
        // As above.
      }
    }
  }
}

/** Resolves when `promise` settles or after `ms`, whichever is first, leaving no timer behind. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  try {
    await Promise.race([
      promise.then(
        () => undefined,
        () => undefined,
      ),
      expiry,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The error object and retry choice a handler's failure becomes. */
function failureOf(thrown: unknown): {
  error: TaskErrorInfo;
  retryable: boolean;
  retryAfterSeconds?: number;
} {
  const error =
    thrown instanceof Error
      ? { type: thrown.name || 'Error', message: thrown.message, stack: thrown.stack }
      : { type: 'Error', message: describe(thrown), stack: undefined };
  const after = (thrown as { retryAfterSeconds?: unknown } | null)?.retryAfterSeconds;
  return {
    error: {
      type: clean(error.type, 200) || 'Error',
      message: clean(error.message, 64 * 1024),
      stack: error.stack === undefined ? undefined : clean(error.stack, 64 * 1024),
    },
    retryable: !(thrown instanceof PermanentError),
    ...(typeof after === 'number' && after >= 0 ? { retryAfterSeconds: after } : {}),
  };
}

/** Text the server stores: no NUL, and bounded so the body stays under its limit. */
function clean(text: string, maxChars: number): string {
  const stripped = text.replace(/\u0000/g, '');
  return stripped.length > maxChars ? stripped.slice(0, maxChars) : stripped;
}

function unsupported(type: string): PermanentError {
  const error = new PermanentError(`no handler for task type '${type}'`);
  error.name = 'UnsupportedTaskType';
  return error;
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}
