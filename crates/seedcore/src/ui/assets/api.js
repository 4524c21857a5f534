// @ts-check
/**
 * Calls from the dashboard to the seedcore API.
 *
 * Every URL starts with the base path the server injected into the shell; every change
 * carries the session's CSRF token; an error answer becomes an ApiError whose message is the
 * API's `detail` (a string, or FastAPI's list of problems joined into one line).
 */

/** @typedef {{base: string, auth: "open" | "session", name: string | null, scopes: string[], csrf: string | null}} Boot */

/** @type {Boot} */
export const boot = JSON.parse(document.getElementById("boot")?.textContent ?? "{}");

/** The URL of a server path (`/api/v1/tasks`) under the base path. */
export function url(path) {
  return boot.base + path;
}

/** Whether the visitor holds a scope (with tokens off, every scope). */
export function can(scope) {
  return boot.scopes.includes(scope);
}

/** An answer other than 2xx, with the API's explanation. */
export class ApiError extends Error {
  /** @param {number} status @param {string} message */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * Calls the API and returns its JSON (null for an empty answer).
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
export async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && boot.csrf) headers["x-csrf-token"] = boot.csrf;
  let response;
  try {
    response = await fetch(url(path), {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, `The server did not answer (${err instanceof Error ? err.message : err})`);
  }
  if (response.status === 401 && boot.auth === "session") {
    location.assign(url("/ui/login"));
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (!response.ok) throw new ApiError(response.status, describe(response.status, data));
  return data;
}

/** The API's error detail as one line. */
function describe(status, data) {
  const detail = data?.detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc ?? []).join(".")}: ${d.msg}`).join("; ");
  }
  return typeof detail === "string" ? detail : `HTTP ${status}`;
}

/** A query string from the non-empty entries of an object. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
