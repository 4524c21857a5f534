/**
 * The errors the client raises: one class per kind of answer a caller acts on differently.
 *
 * Invariant: every answer that is not 2xx becomes a `SeedcoreError` (or a subclass) carrying the
 * HTTP status and the server's `detail`; a request that got no answer at all becomes a
 * `TransportError`. Nothing else is thrown by the HTTP layer.
 */

/** One entry of a 422 answer's `detail` list (FastAPI's shape). */
export interface FieldProblem {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/** An answer the server gave that was not a success. */
export class SeedcoreError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The server's `detail`: a message, or the list of field problems of a 422. */
  readonly detail: unknown;

  constructor(status: number, detail: unknown, message?: string) {
    super(message ?? `HTTP ${status}: ${describe(detail)}`);
    this.name = new.target.name;
    this.status = status;
    this.detail = detail;
  }
}

/** 401: no token, or one the server does not know. */
export class UnauthorizedError extends SeedcoreError {}

/** 403: the token lacks the scope this call needs. */
export class ForbiddenError extends SeedcoreError {}

/** 404: no such task, worker or route. */
export class NotFoundError extends SeedcoreError {}

/** 409 `lease lost`: the lease token is not the task's current one; nothing changed. */
export class LeaseLostError extends SeedcoreError {}

/** 409 other than a lost lease (e.g. an ambiguous id prefix). */
export class ConflictError extends SeedcoreError {}

/** 422: the request was refused; `errors` lists each field's problem. */
export class ValidationError extends SeedcoreError {
  get errors(): FieldProblem[] {
    return Array.isArray(this.detail) ? (this.detail as FieldProblem[]) : [];
  }
}

/** 5xx: the server could not answer now (e.g. its database is unavailable); try again later. */
export class ServerError extends SeedcoreError {}

/** The request got no answer: connection refused or reset, DNS, or the client's timeout. */
export class TransportError extends Error {
  override readonly cause: unknown;

  constructor(message: string, cause?: unknown) {
    super(message);
    this.name = 'TransportError';
    this.cause = cause;
  }
}

/** `Client.wait` gave up before the task finished. */
export class WaitTimeoutError extends Error {
  readonly taskId: string;

  constructor(taskId: string, timeoutMs: number) {
    super(`task ${taskId} did not finish within ${timeoutMs} ms`);
    this.name = 'WaitTimeoutError';
    this.taskId = taskId;
  }
}

/**
 * Thrown by a handler for a failure that another attempt cannot fix: the task fails at once
 * instead of being retried.
 */
export class PermanentError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Whether trying the same request again later may succeed. */
export function isRetryable(error: unknown): boolean {
  return error instanceof TransportError || error instanceof ServerError;
}

/** The error a non-2xx answer becomes. */
export function errorFor(status: number, detail: unknown): SeedcoreError {
  switch (status) {
    case 401:
      return new UnauthorizedError(status, detail);
    case 403:
      return new ForbiddenError(status, detail);
    case 404:
      return new NotFoundError(status, detail);
    case 409:
      return detail === 'lease lost'
        ? new LeaseLostError(status, detail)
        : new ConflictError(status, detail);
    case 422:
      return new ValidationError(status, detail);
    default:
      return status >= 500 ? new ServerError(status, detail) : new SeedcoreError(status, detail);
  }
}

function describe(detail: unknown): string {
  if (typeof detail === 'string') return detail;
  try {
    return JSON.stringify(detail);
  } catch {
    return String(detail);
  }
}
