// @ts-check
/**
 * The overview: every queue with its tasks per status, whether it is paused and how long its
 * oldest ready task has waited, with totals over all queues; refreshed on every change.
 */

import { api } from "./api.js";
import { count, duration, errorBox, h, link, pageUrl } from "./dom.js";
import { onChange, throttle } from "./live.js";

export const STATUSES = ["created", "blocked", "queued", "retry", "running", "completed", "failed", "cancelled"];

/** @param {HTMLElement} main */
export function overview(main) {
  const body = h("div", { "aria-live": "polite" });
  main.append(h("h1", {}, "Overview"), body);
  let alive = true;
  const refresh = async () => {
    try {
      const data = await api("GET", "/ui/api/overview");
      if (alive) body.replaceChildren(...view(data));
    } catch (err) {
      if (alive) body.replaceChildren(errorBox(err));
    }
  };
  refresh();
  const stop = onChange(throttle(refresh));
  return () => {
    alive = false;
    stop();
  };
}

function view({ now, queues }) {
  if (queues.length === 0) {
    return [h("div", { class: "empty card" },
      h("p", {}, "No tasks yet."),
      h("p", {}, "Create one on the ", link("tasks", "Tasks page"), ", or send ",
        h("code", {}, "POST /api/v1/tasks"), "; queues appear here as tasks arrive."))];
  }
  const totals = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const q of queues) for (const [s, n] of Object.entries(q.counts)) totals[s] = (totals[s] ?? 0) + n;
  const tiles = h("div", { class: "tiles" }, STATUSES.map((s) =>
    h("a", { class: "tile", href: pageUrl(`tasks?status=${s}`), "data-link": true, "data-status": s, "aria-label": `${totals[s]} ${s}` },
      h("b", { class: `s-${s}` }, count(totals[s])), s)));
  const head = h("tr", {}, h("th", {}, "Queue"), h("th", {}, "State"),
    STATUSES.map((s) => h("th", { class: "num" }, s)), h("th", {}, "Oldest waiting"));
  const rows = queues.map((q) => h("tr", { "data-queue": q.name },
    h("td", {}, q.name),
    h("td", {}, q.paused ? h("span", { class: "paused" }, "paused") : "active"),
    STATUSES.map((s) => h("td", { class: "num", "data-status": s }, count(q.counts[s] ?? 0))),
    h("td", {}, q.oldest_ready_at
      ? h("span", { title: q.oldest_ready_at }, duration((Date.parse(now) - Date.parse(q.oldest_ready_at)) / 1000))
      : h("span", { class: "muted" }, "none waiting"))));
  return [tiles, h("div", { class: "scroll" }, h("table", {}, h("thead", {}, head), h("tbody", {}, rows)))];
}
