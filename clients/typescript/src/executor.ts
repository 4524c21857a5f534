/**
 * A remote executor: the HTTP endpoint a seedcore worker POSTs tasks to (`SEEDCORE_EXECUTORS`).
 *
 * ```ts
 * const executor = new Executor({ secret: process.env.EXECUTOR_SECRET });
 * executor.register('report.build', async (task, progress) => {
 *   for (const [i, part] of task.params.parts.entries()) {
 *     await render(part);
 *     progress((i + 1) / task.params.parts.length);
 *   }
 *   return { parts: task.params.parts.length };
 * });
 * await executor.listen(9000); // SEEDCORE_EXECUTORS=report.build=http://127.0.0.1:9000/run
 * ```
 *
 * The answer is streamed as JSON lines (`application/x-ndjson`): a `{"progress": f}` line for
 * each `progress(f)` call, then the answer `{success, result, error, retryable}`, so the task's
 * progress shows in seedcore while the handler works. A handler that throws fails the attempt,
 * retryable unless it threw `PermanentError`; its error is `<name>: <message>` and the stack.
 * Once seedcore stops reading (the task was cancelled or its attempt lost its lease), the
 * handler's `signal` aborts and the next `progress` call throws `TaskAbortedError`.
 *
 * With a `secret` (the executor's entry of `SEEDCORE_EXECUTOR_SECRETS`), every request's
 * signature is checked before its body is parsed: `x-seedcore-signature` must be `v1=` and the
 * HMAC-SHA256 of `<x-seedcore-timestamp>.<body>`, and the timestamp within `maxSkewSeconds` of
 * this machine's clock; a request that fails either is answered 401 and runs nothing.
 */

import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { PermanentError } from './errors.js';
import { TaskAbortedError } from './worker.js';

export const TIMESTAMP_HEADER = 'x-seedcore-timestamp';
export const SIGNATURE_HEADER = 'x-seedcore-signature';
/** The largest request body read; a larger one is answered 413. */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** A task as seedcore sends it to an executor: one attempt, its parents' outcomes. */
export interface ExecutorTask {
  id: string;
  type: string;
  params: Record<string, any>;
  domain: string | null;
  drift_score: number;
  attempt: number;
  parents: Array<Record<string, unknown>>;
}

/** Reports how far along the attempt is, from 0 to 1. */
export type ReportProgress = (fraction: number) => void;

/** Runs one task; its return value (JSON) is the task's result. */
export type ExecutorHandler = (
  task: ExecutorTask,
  progress: ReportProgress,
  signal: AbortSignal,
) => unknown | Promise<unknown>;

export interface ExecutorOptions {
  /** The executor's entry of `SEEDCORE_EXECUTOR_SECRETS`; without one, requests are not checked. */
  secret?: string | undefined;
  /** How far a request's timestamp may be from this machine's clock (default 300 s). */
  maxSkewSeconds?: number;
}

interface Answer {
  success: boolean;
  result?: unknown;
  error?: string;
  retryable?: boolean;
}

/** Handlers by task type, served over HTTP to seedcore's workers. */
export class Executor {
  private readonly secret: Buffer | null;
  private readonly maxSkewSeconds: number;
  private readonly handlers = new Map<string, ExecutorHandler>();
  private server: Server | null = null;

  constructor(options: ExecutorOptions = {}) {
    this.secret = options.secret ? Buffer.from(options.secret) : null;
    this.maxSkewSeconds = options.maxSkewSeconds ?? 300;
  }

  /** Serves `type` with `handler`; replaces an earlier one. */
  register(type: string, handler: ExecutorHandler): this {
    this.handlers.set(type, handler);
    return this;
  }

  /** Starts serving on `port` (0: a free one) of `host`; resolves to the port. */
  listen(port: number, host = '127.0.0.1'): Promise<number> {
    // A request that breaks off (its connection reset mid-body) must not end the process.
    const server = createServer((request, response) => {
      this.serve(request, response).catch(() => response.destroy());
    });
    this.server = server;
    return new Promise((done, fail) => {
      server.once('error', fail);
      server.listen(port, host, () => done((server.address() as AddressInfo).port));
    });
  }

  /** Stops accepting requests and closes idle connections; running handlers finish. */
  close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return Promise.resolve();
    return new Promise((done) => {
      server.close(() => done());
      server.closeIdleConnections();
    });
  }

  /** Why the request's signature does not hold, or null when it does (or no secret is set). */
  signatureProblem(
    timestamp: string | undefined,
    signature: string | undefined,
    body: Buffer,
  ): string | null {
    if (this.secret === null) return null;
    if (!timestamp || !signature) return 'the request is not signed';
    if (!/^\d+$/.test(timestamp)) return 'the timestamp is not a number';
    if (Math.abs(Date.now() / 1000 - Number(timestamp)) > this.maxSkewSeconds) {
      return "the timestamp is too far from this machine's clock";
    }
    const mac = createHmac('sha256', this.secret).update(`${timestamp}.`).update(body);
    const expected = Buffer.from(`v1=${mac.digest('hex')}`);
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
      return 'the signature does not match';
    }
    return null;
  }

  private async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method !== 'POST') return refuse(response, 405, 'only POST runs a task');
    const body = await readBody(request);
    if (body === null) return refuse(response, 413, `the body is over ${MAX_BODY_BYTES} bytes`);
    const problem = this.signatureProblem(
      header(request, TIMESTAMP_HEADER),
      header(request, SIGNATURE_HEADER),
      body,
    );
    if (problem !== null) return refuse(response, 401, problem);
    let task: ExecutorTask;
    try {
      task = parseTask(JSON.parse(body.toString('utf8')));
    } catch {
      return refuse(response, 400, 'the body is not a task');
    }
    const handler = this.handlers.get(task.type);
    if (!handler) return refuse(response, 404, `no handler for task type '${task.type}'`);
    response.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const stopped = new AbortController();
    response.once('close', () => {
      if (!response.writableFinished) stopped.abort();
    });
    const progress: ReportProgress = (fraction) => {
      if (!(fraction >= 0 && fraction <= 1)) {
        throw new RangeError(`progress must be a number from 0 to 1, got ${fraction}`);
      }
      if (stopped.signal.aborted) throw new TaskAbortedError('cancelled');
      response.write(`${JSON.stringify({ progress: fraction })}\n`);
    };
    const answer = await run(handler, task, progress, stopped.signal);
    if (answer !== null && !stopped.signal.aborted) response.end(line(answer));
  }
}

/** The handler's outcome as the answer's last line; null when seedcore stopped reading. */
async function run(
  handler: ExecutorHandler,
  task: ExecutorTask,
  progress: ReportProgress,
  signal: AbortSignal,
): Promise<Answer | null> {
  try {
    return { success: true, result: (await handler(task, progress, signal)) ?? null };
  } catch (thrown) {
    if (thrown instanceof TaskAbortedError && signal.aborted) return null;
    const error =
      thrown instanceof Error
        ? `${thrown.name}: ${thrown.message}\n${thrown.stack ?? ''}`
        : `Error: ${String(thrown)}`;
    return { success: false, error, retryable: !(thrown instanceof PermanentError) };
  }
}

/** The answer as a line, or a failure saying why a result is not JSON. */
function line(answer: Answer): string {
  try {
    return `${JSON.stringify(answer)}\n`;
  } catch (thrown) {
    const error = `the handler's result is not JSON: ${String(thrown)}`;
    return `${JSON.stringify({ success: false, error, retryable: false })}\n`;
  }
}

function parseTask(body: unknown): ExecutorTask {
  const task = (typeof body === 'object' && body !== null ? body : {}) as Partial<ExecutorTask>;
  const { id, type } = task;
  if (typeof id !== 'string' || typeof type !== 'string') throw new TypeError('not a task');
  return {
    id,
    type,
    params: task.params ?? {},
    domain: task.domain ?? null,
    drift_score: task.drift_score ?? 0,
    attempt: task.attempt ?? 1,
    parents: task.parents ?? [],
  };
}

/** The request's body, or null once it passes MAX_BODY_BYTES. */
async function readBody(request: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function refuse(response: ServerResponse, status: number, detail: string): void {
  const data = JSON.stringify({ detail });
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(data),
  });
  response.end(data);
}
