// @ts-check
/**
 * Workers: every registered process, active, stopped or lost, with its slots and last
 * heartbeat and the tasks it runs now (read from the running tasks, up to 1,000); pull workers (`pull:…`) can be told to go quiet or terminate by holders of
 * `queues:admin`. Workers send no events, so the list is read every few seconds.
 */

import { api, can } from "./api.js";
import { confirmDialog, errorBox, h, link, time } from "./dom.js";

const REFRESH_MS = 5000;

/** @param {HTMLElement} main */
export function workers(main) {
  const body = h("div", {});
  main.append(h("h1", {}, "Workers"), body);
  let alive = true;
  const refresh = async () => {
    try {
      const [{ items }, running] = await Promise.all([
        api("GET", "/api/v1/workers"),
        api("GET", "/api/v1/tasks?status=running&limit=1000"),
      ]);
      /** @type {Map<string, any[]>} */
      const byWorker = new Map();
      for (const t of running.items) byWorker.set(t.worker_id, [...(byWorker.get(t.worker_id) ?? []), t]);
      if (alive) body.replaceChildren(view(items, byWorker, refresh));
    } catch (err) {
      if (alive) body.replaceChildren(errorBox(err));
    }
  };
  refresh();
  const timer = window.setInterval(refresh, REFRESH_MS);
  return () => {
    alive = false;
    window.clearInterval(timer);
  };
}

function view(items, byWorker, refresh) {
  if (items.length === 0) {
    return h("div", { class: "empty card" }, h("p", {}, "No worker has registered. Start one with ",
      h("code", {}, "seedcore worker"), ", or run ", h("code", {}, "seedcore serve"), " with workers."));
  }
  const admin = can("queues:admin");
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, ["Worker", "State", "Slots in use", "Current tasks", "Last heartbeat", "Started", "Version"].map((t) => h("th", {}, t)),
      admin ? h("th", {}, "Action") : null)),
    h("tbody", {}, items.map((w) => h("tr", { "data-worker": w.id },
      h("td", {}, h("code", {}, w.id)),
      h("td", {}, h("span", { class: `status s-${w.state === "active" ? "completed" : w.state === "lost" ? "failed" : "cancelled"}` }, w.state)),
      h("td", { class: "num", title: `${w.concurrency} normal + ${w.escalated_concurrency} escalated slots` },
        `${(byWorker.get(w.id) ?? []).length} of ${w.concurrency + w.escalated_concurrency}`),
      h("td", {}, current(byWorker.get(w.id) ?? [])),
      h("td", {}, time(w.last_seen_at)),
      h("td", {}, time(w.started_at)),
      h("td", {}, w.version),
      admin ? h("td", {}, controls(w, refresh)) : null)))));
}

/** The first few running tasks of a worker, linked. */
function current(tasks) {
  if (!tasks.length) return h("span", { class: "muted" }, "idle");
  const shown = tasks.slice(0, 4).map((t) => [link(`tasks/${t.id}`, h("code", {}, t.id.slice(0, 8))), " "]);
  return h("span", {}, shown, tasks.length > 4 ? `+${tasks.length - 4} more` : "");
}

function controls(w, refresh) {
  if (!w.id.startsWith("pull:") || w.state !== "active") return h("span", { class: "muted" }, "—");
  const message = h("span", {});
  const act = async (verb) => {
    if (!(await confirmDialog(`${verb === "quiet" ? "Quiet" : "Terminate"} worker ${w.id}?`, verb === "quiet" ? "Quiet" : "Terminate"))) return;
    try {
      await api("POST", `/api/v1/workers/${encodeURIComponent(w.id)}/${verb}`);
      refresh();
    } catch (err) {
      message.replaceChildren(errorBox(err));
    }
  };
  return h("span", { class: "row" },
    h("button", { type: "button", onclick: () => act("quiet") }, "Quiet"),
    h("button", { type: "button", class: "danger", onclick: () => act("terminate") }, "Terminate"),
    message);
}
