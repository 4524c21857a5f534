/**
 * seedcore-client: a producer and worker client for seedcore's HTTP API.
 *
 * `Client` makes single calls (create, read, wait for, cancel tasks; the pull API's worker
 * routes); `Worker` runs handlers on claimed tasks with leases kept alive by a thread of its
 * own. `Executor` serves handlers to seedcore's own workers as a remote executor.
 */

export { Client, sleep, type ClientOptions, type FailOptions, type WaitOptions } from './client.js';
export {
  ConflictError,
  ForbiddenError,
  LeaseLostError,
  NotFoundError,
  PermanentError,
  SeedcoreError,
  ServerError,
  TransportError,
  UnauthorizedError,
  ValidationError,
  WaitTimeoutError,
  isRetryable,
  type FieldProblem,
} from './errors.js';
export {
  Executor,
  type ExecutorHandler,
  type ExecutorOptions,
  type ExecutorTask,
  type ReportProgress,
} from './executor.js';
export {
  TaskAbortedError,
  Worker,
  type AbortReason,
  type Handler,
  type TaskContext,
  type WorkerEvent,
  type WorkerEventName,
  type WorkerOptions,
} from './worker.js';
export * from './types.js';
export { CLIENT_NAME, CLIENT_VERSION } from './version.js';
