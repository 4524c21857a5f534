// @ts-check
/**
 * Live updates: the API's event stream (`/api/v1/events`), polling every few seconds when the
 * stream cannot be held, and a pause control.
 *
 * Pages subscribe with `onChange`; they get each task change (or `null` for "something may
 * have changed", from polling or when updates resume) and re-read what they show. While
 * paused nothing is delivered; resuming delivers one `null` so pages catch up.
 */

import { url } from "./api.js";

const POLL_MS = 4000;
/** @type {Set<(change: any) => void>} */
const listeners = new Set();
let paused = false;
/** @type {EventSource | null} */
let source = null;
/** @type {number | undefined} */
let poller;
/** @type {HTMLElement | null} */
let control = null;

/** Registers a page's listener; returns the function that removes it. */
export function onChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function deliver(change) {
  if (paused) return;
  for (const listener of [...listeners]) listener(change);
}

/** Starts following the stream; `button` is the pause control. */
export function start(button) {
  control = button;
  button.addEventListener("click", () => setPaused(!paused));
  connect();
}

function connect() {
  source = new EventSource(url("/api/v1/events"), { withCredentials: true });
  source.addEventListener("task", (event) => {
    try {
      deliver(JSON.parse(/** @type {MessageEvent} */ (event).data));
    } catch {
      deliver(null);
    }
  });
  source.addEventListener("open", () => {
    stopPolling();
    show("live");
  });
  // The browser reconnects by itself unless the server refused the stream; meanwhile, and
  // after a refusal, pages are refreshed by polling.
  source.addEventListener("error", () => {
    startPolling();
    if (source?.readyState === EventSource.CLOSED) {
      source = null;
      setTimeout(connect, 10_000);
    }
  });
}

function startPolling() {
  show("polling");
  if (poller === undefined) poller = window.setInterval(() => deliver(null), POLL_MS);
}

function stopPolling() {
  if (poller !== undefined) window.clearInterval(poller);
  poller = undefined;
}

function setPaused(value) {
  paused = value;
  control?.setAttribute("aria-pressed", String(paused));
  if (control) control.textContent = paused ? "Paused" : "Live";
  if (!paused) deliver(null);
}

function show(mode) {
  if (!control) return;
  control.dataset.mode = mode;
  control.title = mode === "live"
    ? "Updating live from the event stream; click to pause"
    : "The event stream is unavailable: refreshing every few seconds; click to pause";
}

/** Calls `refresh` at most every `ms` milliseconds while changes arrive. */
export function throttle(refresh, ms = 400) {
  /** @type {number | undefined} */
  let timer;
  return () => {
    if (timer !== undefined) return;
    timer = window.setTimeout(() => {
      timer = undefined;
      refresh();
    }, ms);
  };
}
