// @ts-check
/**
 * Small DOM helpers: building elements without HTML strings (so no text is ever parsed as
 * markup), times in the viewer's zone with UTC on hover, status badges and error boxes.
 */

import { url } from "./api.js";

/**
 * An element with attributes (`on*` functions become listeners) and children.
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key in el && typeof value !== "string") /** @type {any} */ (el)[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** The address of a dashboard page (`tasks/…`, below `/ui`). */
export function pageUrl(path) {
  return `${url("/ui")}/${path}`;
}

/** A link to a dashboard page (`tasks/…`), followed without a page load. */
export function link(path, ...children) {
  return h("a", { href: pageUrl(path), "data-link": true }, ...children);
}

/** A time in the viewer's zone, its UTC form on hover. */
export function time(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  return h("time", { datetime: iso, title: `${date.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z")} UTC` },
    date.toLocaleString());
}

/** A duration in seconds for people: 4 s, 3 min, 2 h 5 min, 3 d. */
export function duration(seconds) {
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d`;
}

/** A task status as a badge. */
export function status(name) {
  return h("span", { class: `status s-${name}` }, name);
}

/** A JSON value, pretty-printed. */
export function json(value) {
  return h("pre", {}, value === undefined || value === null ? "null" : JSON.stringify(value, null, 2));
}

/** A message where an action failed, announced to screen readers. */
export function errorBox(err) {
  return h("p", { class: "error", role: "alert" }, err instanceof Error ? err.message : String(err));
}

/** Numbers with thousands separators. */
export function count(n) {
  return Number(n ?? 0).toLocaleString();
}

/**
 * Asks for confirmation in a modal dialog; resolves true when confirmed.
 * @param {string} message
 * @param {string} confirmLabel
 */
export function confirmDialog(message, confirmLabel) {
  return new Promise((resolve) => {
    const dialog = /** @type {HTMLDialogElement} */ (h("dialog", { "aria-label": "Confirm" },
      h("p", {}, message),
      h("form", { method: "dialog", class: "row" },
        h("button", { value: "cancel", type: "submit" }, "Keep them"),
        h("button", { value: "ok", type: "submit", class: "primary" }, confirmLabel))));
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
