/**
 * The HTTP layer: JSON requests over Node's global `fetch` (undici, which keeps connections
 * alive), each bounded by a timeout and optionally by the caller's abort signal.
 *
 * Invariant: a call either resolves with a 2xx answer's JSON (`undefined` for 204) or rejects
 * with a `SeedcoreError` (an answer), a `TransportError` (no answer), or the caller's own abort
 * reason when the caller aborted.
 */

import { TransportError, errorFor } from './errors.js';

/** Where the server is and how to talk to it. */
export interface HttpSettings {
  /** The server's base URL, e.g. `http://127.0.0.1:8000`. */
  url: string;
  /** A bearer token; none on an open server. */
  token?: string | undefined;
  /** How long a request may take before it counts as a transport failure (default 30 s). */
  timeoutMs?: number | undefined;
}

export interface RequestOptions {
  /** Overrides the settings' timeout for this request. */
  timeoutMs?: number;
  /** Aborts the request; the call then rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
  headers?: Record<string, string>;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

export class Http {
  readonly base: string;
  readonly timeoutMs: number;
  private readonly headers: Record<string, string>;

  constructor(settings: HttpSettings) {
    this.base = settings.url.replace(/\/+$/, '');
    this.timeoutMs = settings.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.headers = { accept: 'application/json' };
    if (settings.token) this.headers.authorization = `Bearer ${settings.token}`;
  }

  /** The settings to build an equal `Http` elsewhere (e.g. in another thread). */
  settings(): HttpSettings {
    const token = this.headers.authorization?.slice('Bearer '.length);
    return { url: this.base, token, timeoutMs: this.timeoutMs };
  }

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    options: RequestOptions = {},
  ): Promise<T> {
    const headers: Record<string, string> = { ...this.headers, ...options.headers };
    let payload: string | undefined;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    const limit = bounded(options.timeoutMs ?? this.timeoutMs, options.signal);
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: payload,
        signal: limit.signal,
      });
      text = await response.text();
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw new TransportError(`${method} ${path}: ${reasonOf(error, limit.timedOut())}`, error);
    } finally {
      limit.done();
    }
    const parsed = parse(text);
    if (response.status >= 200 && response.status < 300) return parsed as T;
    const detail = isObject(parsed) && 'detail' in parsed ? parsed.detail : (parsed ?? text);
    throw errorFor(response.status, detail);
  }
}

/** A signal that fires after `timeoutMs` or when `outer` does, whichever comes first. */
function bounded(timeoutMs: number, outer?: AbortSignal) {
  const controller = new AbortController();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new Error(`timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  const forward = () => controller.abort(outer?.reason);
  if (outer?.aborted) forward();
  else outer?.addEventListener('abort', forward, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => expired,
    done: () => {
      clearTimeout(timer);
      outer?.removeEventListener('abort', forward);
    },
  };
}

function reasonOf(error: unknown, timedOut: boolean): string {
  if (timedOut) return 'timed out';
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    if (cause instanceof Error) return `${error.message} (${cause.message})`;
    return error.message;
  }
  return String(error);
}

function parse(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
