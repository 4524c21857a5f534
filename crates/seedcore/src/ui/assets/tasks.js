// @ts-check
/**
 * Tasks: the list with filters (status, type, domain) kept in the address, paging by offset,
 * a form to create a task, and bulk changes: the rows selected, or every task matching the
 * filters through the bulk actions endpoint, each after a confirmation that states the count,
 * with a progress bar while it runs. Controls the visitor's scopes lack are not shown.
 */

import { api, can, query } from "./api.js";
import { navigate } from "./app.js";
import { confirmDialog, count, errorBox, h, link, status, time } from "./dom.js";
import { onChange, throttle } from "./live.js";
import { STATUSES } from "./overview.js";

const PAGE = 50;
const ACTIONS = [
  ["cancel", "Cancel", "cancelled"],
  ["run", "Run again", "queued again"],
  ["delete", "Delete", "deleted"],
];

/** @param {HTMLElement} main @param {string[]} _params @param {URLSearchParams} search */
export function tasks(main, _params, search) {
  const filter = {
    status: search.get("status") ?? "",
    type: search.get("type") ?? "",
    domain: search.get("domain") ?? "",
  };
  const offset = Math.max(0, Number(search.get("offset") ?? 0) || 0);
  /** @type {Set<string>} */
  const selected = new Set();
  const state = { allMatching: false, total: 0, items: /** @type {any[]} */ ([]), busy: false };
  const list = h("div", { "aria-live": "polite" });
  const toolbar = h("div", { class: "toolbar" });
  const progress = h("div", {});
  main.append(h("h1", {}, "Tasks"), can("tasks:write") ? createForm() : "",
    filters(filter), toolbar, progress, list);

  let alive = true;
  const refresh = async () => {
    try {
      const page = await api("GET", `/api/v1/tasks${query({ ...filter, limit: PAGE, offset })}`);
      if (!alive) return;
      state.total = page.total;
      state.items = page.items;
      for (const id of [...selected]) if (!page.items.some((t) => t.id === id)) selected.delete(id);
      draw();
    } catch (err) {
      if (alive) list.replaceChildren(errorBox(err));
    }
  };
  const draw = () => {
    list.replaceChildren(table(state, selected, draw, filter, offset));
    toolbar.replaceChildren(...tools(state, selected, draw, run));
  };
  /** Runs a bulk change after confirmation, with progress. */
  const run = async (action, label, past) => {
    const n = state.allMatching ? state.total : selected.size;
    const what = state.allMatching ? `all ${count(n)} matching tasks` : `${count(n)} selected task${n === 1 ? "" : "s"}`;
    if (!(await confirmDialog(`${label} ${what}? Tasks it does not apply to are skipped.`, `${label} ${count(n)}`))) return;
    state.busy = true;
    draw();
    const bar = /** @type {HTMLProgressElement} */ (h("progress", { max: n, value: 0, "aria-label": "Progress" }));
    const text = h("p", { role: "status" }, `${label}: starting…`);
    progress.replaceChildren(h("div", { class: "notice" }, text, bar));
    try {
      if (state.allMatching) await runAll(action, filter, n, bar, text, past);
      else await runEach(action, [...selected], bar, text, past);
      selected.clear();
      state.allMatching = false;
    } catch (err) {
      progress.append(errorBox(err));
    } finally {
      state.busy = false;
      await refresh();
    }
  };
  refresh();
  const stop = onChange(throttle(refresh, 800));
  return () => {
    alive = false;
    stop();
  };
}

function filters(filter) {
  const form = h("form", { class: "filters", role: "search", onsubmit: (/** @type {Event} */ e) => {
    e.preventDefault();
    const data = new FormData(/** @type {HTMLFormElement} */ (e.target));
    navigate(`tasks${query({ status: data.get("status"), type: data.get("type"), domain: data.get("domain") })}`);
  } },
  h("div", {}, h("label", { for: "f-status" }, "Status"),
    h("select", { id: "f-status", name: "status" }, h("option", { value: "" }, "any"),
      STATUSES.map((s) => h("option", { value: s, selected: s === filter.status }, s)))),
  h("div", {}, h("label", { for: "f-type" }, "Type"), h("input", { id: "f-type", name: "type", value: filter.type, placeholder: "any" })),
  h("div", {}, h("label", { for: "f-domain" }, "Domain"), h("input", { id: "f-domain", name: "domain", value: filter.domain, placeholder: "any" })),
  h("button", { type: "submit", class: "primary" }, "Filter"),
  link("tasks", "Clear"));
  return form;
}

function table(state, selected, draw, filter, offset) {
  if (state.items.length === 0) {
    return h("div", { class: "empty card" }, h("p", {}, offset > 0
      ? "No more tasks on this page."
      : filter.status || filter.type || filter.domain
        ? "No task matches these filters: change or clear them."
        : "No tasks yet: create one above, or send POST /api/v1/tasks."));
  }
  const admin = can("tasks:admin");
  const all = state.items.every((t) => selected.has(t.id));
  const pick = (/** @type {string} */ id, on) => {
    if (on) selected.add(id);
    else selected.delete(id);
    state.allMatching = false;
    draw();
  };
  const head = h("tr", {},
    admin ? h("th", {}, h("input", { type: "checkbox", "aria-label": "Select every task on this page", checked: all, disabled: state.busy,
      onchange: (/** @type {Event} */ e) => {
        const on = /** @type {HTMLInputElement} */ (e.target).checked;
        for (const t of state.items) on ? selected.add(t.id) : selected.delete(t.id);
        state.allMatching = false;
        draw();
      } })) : null,
    ["Task", "Type", "Queue", "Status", "Created", "Attempts"].map((t) => h("th", {}, t)));
  const rows = state.items.map((t) => h("tr", { "data-task": t.id, "data-status": t.status },
    admin ? h("td", {}, h("input", { type: "checkbox", "aria-label": `Select task ${t.id.slice(0, 8)}`, checked: selected.has(t.id),
      disabled: state.busy, onchange: (/** @type {Event} */ e) => pick(t.id, /** @type {HTMLInputElement} */ (e.target).checked) })) : null,
    h("td", {}, link(`tasks/${t.id}`, h("code", {}, t.id.slice(0, 8)))),
    h("td", {}, t.type), h("td", {}, t.queue), h("td", {}, status(t.status)),
    h("td", {}, time(t.created_at)), h("td", { class: "num" }, `${t.attempts}/${t.max_attempts}`)));
  const here = (/** @type {number} */ at) => `tasks${query({ ...filter, offset: at || "" })}`;
  const pager = h("div", { class: "row" },
    h("span", { class: "muted" }, `${count(offset + 1)}–${count(offset + state.items.length)} of ${count(state.total)}`),
    offset > 0 ? link(here(Math.max(0, offset - PAGE)), "← Newer") : null,
    offset + state.items.length < state.total ? link(here(offset + PAGE), "Older →") : null);
  return h("div", {}, h("div", { class: "scroll" }, h("table", {}, h("thead", {}, head), h("tbody", {}, rows))), pager);
}

function tools(state, selected, draw, run) {
  if (!can("tasks:admin")) return [];
  const n = state.allMatching ? state.total : selected.size;
  const out = [];
  const pageAll = state.items.length > 0 && state.items.every((t) => selected.has(t.id));
  if (pageAll && state.total > state.items.length && !state.allMatching) {
    out.push(h("span", { class: "notice" }, `All ${state.items.length} on this page are selected. `,
      h("button", { type: "button", onclick: () => { state.allMatching = true; draw(); } }, `Select all ${count(state.total)} matching`)));
  } else if (state.allMatching) {
    out.push(h("span", { class: "notice" }, `All ${count(state.total)} matching tasks are selected. `,
      h("button", { type: "button", onclick: () => { state.allMatching = false; selected.clear(); draw(); } }, "Clear selection")));
  }
  out.push(h("span", { class: "muted" }, n ? `${count(n)} selected` : "Select tasks to act on them"));
  for (const [action, label, past] of ACTIONS) {
    out.push(h("button", { type: "button", class: action === "run" ? "" : "danger", "data-action": action,
      disabled: n === 0 || state.busy, onclick: () => run(action, label, past) }, label));
  }
  return out;
}

/** One request per selected task, in order. */
async function runEach(action, ids, bar, text, past) {
  let done = 0;
  const failures = [];
  for (const id of ids) {
    try {
      if (action === "delete") await api("DELETE", `/api/v1/tasks/${id}`);
      else await api("POST", `/api/v1/tasks/${id}/${action}`);
    } catch (err) {
      failures.push(`${id.slice(0, 8)}: ${err instanceof Error ? err.message : err}`);
    }
    done += 1;
    bar.value = done;
    text.textContent = `${done} of ${ids.length} done`;
  }
  text.textContent = `${ids.length - failures.length} of ${ids.length} ${past}.`;
  if (failures.length) throw new Error(`Not changed: ${failures.join("; ")}`);
}

/** The bulk actions endpoint, followed until it finishes. */
async function runAll(action, filter, n, bar, text, past) {
  const body = { action, filter: Object.fromEntries(Object.entries(filter).filter(([, v]) => v)) };
  let job = await api("POST", "/api/v1/tasks/actions", body);
  while (job.state === "running") {
    bar.value = Math.min(n, job.done + job.skipped);
    text.textContent = `${count(job.done)} ${past}, ${count(job.skipped)} skipped, of ${count(n)}…`;
    await new Promise((resolve) => setTimeout(resolve, 300));
    job = await api("GET", `/api/v1/actions/${job.id}`);
  }
  bar.max = Math.max(1, job.done + job.skipped);
  bar.value = bar.max;
  text.textContent = `${count(job.done)} ${past}, ${count(job.skipped)} skipped.`;
  if (job.state === "failed") throw new Error(job.error ?? "The action failed");
}

function createForm() {
  const message = h("div", {});
  const form = h("form", { class: "card", onsubmit: async (/** @type {Event} */ e) => {
    e.preventDefault();
    const data = new FormData(/** @type {HTMLFormElement} */ (e.target));
    let params;
    try {
      params = JSON.parse(String(data.get("params") || "{}"));
    } catch {
      message.replaceChildren(errorBox("Parameters must be JSON, e.g. {\"hello\": \"world\"}"));
      return;
    }
    try {
      const created = await api("POST", "/api/v1/tasks", {
        type: data.get("type"), queue: data.get("queue") || undefined, params,
        run_immediately: data.get("run") === "on",
      });
      navigate(`tasks/${created.id}`);
    } catch (err) {
      message.replaceChildren(errorBox(err));
    }
  } },
  h("div", { class: "filters" },
    h("div", {}, h("label", { for: "n-type" }, "Type"), h("input", { id: "n-type", name: "type", required: true, value: "echo" })),
    h("div", {}, h("label", { for: "n-queue" }, "Queue"), h("input", { id: "n-queue", name: "queue", placeholder: "default" })),
    h("div", {}, h("label", {}, h("input", { type: "checkbox", name: "run", checked: true }), " Run immediately"))),
  h("label", { for: "n-params" }, "Parameters (JSON)"),
  h("textarea", { id: "n-params", name: "params" }, "{}"),
  h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Create task")),
  message);
  return h("details", {}, h("summary", {}, "New task"), form);
}
