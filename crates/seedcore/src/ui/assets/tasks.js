// @ts-check
/**
 * Tasks: the list with its filters (status, type, domain, queue, creation time, a search of
 * parameters and errors, parameter filters as removable chips, a parent's children) kept in
 * the address so a filtered view can be shared and survives a reload, sorting by the Created
 * and Updated columns, paging by cursor (Next and Previous, over a stack of cursors) with an
 * estimated total, a form to create a task, and bulk changes: the rows selected, or every task
 * matching the same filters through the bulk actions endpoint, each after a confirmation that
 * states the count, with a progress bar while it runs. Controls the visitor's scopes lack are
 * not shown.
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
/** Quick choices of the creation time: the address's `since` and its length in ms. */
const SINCE = [["", "any time"], ["1h", "last hour", 3_600_000], ["24h", "last 24 h", 86_400_000],
  ["7d", "last 7 days", 604_800_000]];
const TEXT_FILTERS = ["status", "type", "domain", "queue", "q", "parent", "since", "created_after", "created_before", "sort"];

/**
 * The filters of the page's address: the plain ones by name, the parameter filters as
 * `[path, value]` pairs (from `params.<path>=<value>`).
 * @param {URLSearchParams} search
 */
function readFilter(search) {
  /** @type {Record<string, string>} */
  const filter = {};
  for (const name of TEXT_FILTERS) filter[name] = search.get(name) ?? "";
  /** @type {[string, string][]} */
  const params = [];
  for (const [key, value] of search) {
    if (key.startsWith("params.") && key.length > 7) params.push([key.slice(7), value]);
  }
  return { filter, params };
}

/** The page's address for these filters. */
function pageFor(filter, params) {
  const extra = Object.fromEntries(params.map(([path, value]) => [`params.${path}`, value]));
  return `tasks${query({ ...filter, ...extra })}`;
}

/** The creation bounds the filter stands for, as the API takes them. */
function timeBounds(filter) {
  const quick = SINCE.find(([key]) => key && key === filter.since);
  if (quick) return { created_after: new Date(Date.now() - Number(quick[2])).toISOString(), created_before: "" };
  return { created_after: isoOf(filter.created_after), created_before: isoOf(filter.created_before) };
}

/** A `datetime-local` value (the visitor's time) as RFC 3339; anything else as given. */
function isoOf(text) {
  if (!text) return "";
  const at = new Date(text);
  return Number.isNaN(at.getTime()) ? text : at.toISOString();
}

/** The list's query parameters (without paging) for the filters. */
function apiFilter(filter, params) {
  const { since: _since, created_after: _after, created_before: _before, sort: _sort, ...plain } = filter;
  const extra = Object.fromEntries(params.map(([path, value]) => [`params.${path}`, value]));
  return { ...plain, ...timeBounds(filter), ...extra };
}

/** The same filters as a bulk action's `filter`. */
function actionFilter(filter, params) {
  const { since: _since, created_after: _after, created_before: _before, sort: _sort, ...plain } = filter;
  const body = Object.fromEntries(Object.entries({ ...plain, ...timeBounds(filter) }).filter(([, v]) => v));
  if (params.length) body.params = params.map(([path, value]) => `${path}=${value}`);
  return body;
}

/**
 * `customer_id = 42` or `params.customer_id = 42` as a parameter filter; null when malformed.
 * @param {string} text
 * @returns {[string, string] | null}
 */
export function parseParamFilter(text) {
  const at = text.indexOf("=");
  if (at < 0) return null;
  const path = text.slice(0, at).trim().replace(/^params\./, "");
  const value = text.slice(at + 1).trim();
  if (!path || path.split(".").some((key) => !key) || !value) return null;
  return [path, value];
}

/** @param {HTMLElement} main @param {string[]} _params @param {URLSearchParams} search */
export function tasks(main, _params, search) {
  const { filter, params } = readFilter(search);
  /** @type {Set<string>} */
  const selected = new Set();
  const state = {
    allMatching: false, total: 0, estimated: false, items: /** @type {any[]} */ ([]), busy: false,
    next: /** @type {string | null} */ (null), cursors: /** @type {string[]} */ ([]),
  };
  const list = h("div", { "aria-live": "polite" });
  const toolbar = h("div", { class: "toolbar" });
  const progress = h("div", {});
  main.append(h("h1", {}, "Tasks"), can("tasks:write") ? createForm() : "",
    filters(filter, params), toolbar, progress, list);

  let alive = true;
  const refresh = async () => {
    const cursor = state.cursors[state.cursors.length - 1] ?? "";
    try {
      const page = await api("GET", `/api/v1/tasks${query({ ...apiFilter(filter, params), sort: filter.sort,
        count: "estimate", limit: PAGE, cursor })}`);
      if (!alive) return;
      state.total = page.total ?? 0;
      state.estimated = Boolean(page.total_is_estimate);
      state.items = page.items;
      state.next = page.next_cursor ?? null;
      for (const id of [...selected]) if (!page.items.some((t) => t.id === id)) selected.delete(id);
      draw();
    } catch (err) {
      if (alive) list.replaceChildren(errorBox(err));
    }
  };
  const turn = (/** @type {string | null} */ next) => {
    if (next) state.cursors.push(next);
    else state.cursors.pop();
    selected.clear();
    state.allMatching = false;
    refresh();
  };
  const draw = () => {
    list.replaceChildren(table(state, selected, draw, filter, params, turn));
    toolbar.replaceChildren(...tools(state, selected, draw, run));
  };
  /** Runs a bulk change after confirmation, with progress. */
  const run = async (action, label, past) => {
    const n = state.allMatching ? state.total : selected.size;
    const about = state.allMatching && state.estimated ? "about " : "";
    const what = state.allMatching ? `all ${about}${count(n)} matching tasks` : `${count(n)} selected task${n === 1 ? "" : "s"}`;
    if (!(await confirmDialog(`${label} ${what}? Tasks it does not apply to are skipped.`, `${label} ${about}${count(n)}`))) return;
    state.busy = true;
    draw();
    const bar = /** @type {HTMLProgressElement} */ (h("progress", { max: n, value: 0, "aria-label": "Progress" }));
    const text = h("p", { role: "status" }, `${label}: starting…`);
    progress.replaceChildren(h("div", { class: "notice" }, text, bar));
    try {
      if (state.allMatching) await runAll(action, actionFilter(filter, params), n, bar, text, past);
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

function filters(filter, params) {
  const chips = [...params];
  const chipList = h("ul", { class: "chips", "aria-label": "Parameter filters" });
  const message = h("div", { class: "filter-message" });
  const drawChips = () => chipList.replaceChildren(...chips.map(([path, value], i) => h("li", { class: "chip", "data-param": path },
    h("code", {}, `${path} = ${value}`),
    h("button", { type: "button", "aria-label": `Remove the filter ${path} = ${value}`, onclick: () => {
      chips.splice(i, 1);
      // A chip of the list shown goes at once; one only added waits for Filter, like the rest.
      if (params.some(([p, v]) => p === path && v === value)) navigate(pageFor(filter, chips));
      else drawChips();
    } }, "×"))));
  drawChips();
  const paramInput = /** @type {HTMLInputElement} */ (h("input", { id: "f-param", placeholder: "customer_id = 42" }));
  const addParam = () => {
    const text = paramInput.value.trim();
    if (!text) return true;
    const parsed = parseParamFilter(text);
    if (!parsed) {
      message.replaceChildren(errorBox("A parameter filter reads path = value, e.g. customer_id = 42 or customer.tier = gold"));
      return false;
    }
    message.replaceChildren();
    chips.push(parsed);
    paramInput.value = "";
    drawChips();
    return true;
  };
  paramInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && paramInput.value.trim()) {
      e.preventDefault();
      addParam();
    }
  });
  const custom = filter.created_after || filter.created_before;
  const range = h("div", { class: "custom-range", hidden: !custom },
    h("div", {}, h("label", { for: "f-after" }, "Created after"),
      h("input", { id: "f-after", name: "created_after", type: "datetime-local", value: filter.created_after })),
    h("div", {}, h("label", { for: "f-before" }, "Created before"),
      h("input", { id: "f-before", name: "created_before", type: "datetime-local", value: filter.created_before })));
  const since = h("select", { id: "f-since", name: "since", onchange: (/** @type {Event} */ e) => {
    range.hidden = /** @type {HTMLSelectElement} */ (e.target).value !== "custom";
  } },
  SINCE.map(([key, label]) => h("option", { value: key, selected: key === filter.since && !custom }, label)),
  h("option", { value: "custom", selected: Boolean(custom) }, "between…"));
  const form = h("form", { class: "filters task-filters", role: "search", onsubmit: (/** @type {Event} */ e) => {
    e.preventDefault();
    if (!addParam()) return;
    const data = new FormData(/** @type {HTMLFormElement} */ (e.target));
    const value = (/** @type {string} */ name) => String(data.get(name) ?? "").trim();
    const between = value("since") === "custom";
    navigate(pageFor({
      status: value("status"), type: value("type"), domain: value("domain"), queue: value("queue"), q: value("q"),
      parent: filter.parent, since: between ? "" : value("since"),
      created_after: between ? value("created_after") : "", created_before: between ? value("created_before") : "",
      sort: filter.sort,
    }, chips));
  } },
  h("div", {}, h("label", { for: "f-q" }, "Search"),
    h("input", { id: "f-q", name: "q", type: "search", value: filter.q, placeholder: "in parameters and errors" })),
  h("div", {}, h("label", { for: "f-status" }, "Status"),
    h("select", { id: "f-status", name: "status" }, h("option", { value: "" }, "any"),
      STATUSES.map((s) => h("option", { value: s, selected: s === filter.status }, s)))),
  h("div", {}, h("label", { for: "f-type" }, "Type"), h("input", { id: "f-type", name: "type", value: filter.type, placeholder: "any" })),
  h("div", {}, h("label", { for: "f-queue" }, "Queue"), h("input", { id: "f-queue", name: "queue", value: filter.queue, placeholder: "any" })),
  h("div", {}, h("label", { for: "f-domain" }, "Domain"), h("input", { id: "f-domain", name: "domain", value: filter.domain, placeholder: "any" })),
  h("div", {}, h("label", { for: "f-since" }, "Created"), since),
  range,
  h("div", {}, h("label", { for: "f-param" }, "Parameter filter"), paramInput),
  h("button", { type: "button", onclick: addParam }, "Add filter"),
  h("button", { type: "submit", class: "primary" }, "Filter"),
  link("tasks", "Clear"));
  const parent = filter.parent
    ? h("p", { class: "muted" }, "Children of task ", link(`tasks/${filter.parent}`, h("code", {}, filter.parent.slice(0, 8))), " ",
      link(pageFor({ ...filter, parent: "" }, params), "(show all tasks)"))
    : null;
  return h("div", {}, form, chipList, message, parent);
}

/** A column header that sorts the list by `field`, saying how it is sorted now. */
function sortHeader(label, field, filter, params) {
  const sort = filter.sort || "-created_at";
  const current = sort.replace(/^-/, "") === field;
  const descending = sort.startsWith("-");
  const next = current && descending ? field : `-${field}`;
  const arrow = current ? (descending ? " ↓" : " ↑") : "";
  return h("th", { "aria-sort": current ? (descending ? "descending" : "ascending") : "none" },
    h("button", { type: "button", class: "sort", "data-sort": field,
      onclick: () => navigate(pageFor({ ...filter, sort: next === "-created_at" ? "" : next }, params)) }, label, arrow));
}

function table(state, selected, draw, filter, params, turn) {
  const first = state.cursors.length === 0;
  if (state.items.length === 0) {
    const filtered = params.length || TEXT_FILTERS.some((name) => name !== "sort" && filter[name]);
    return h("div", { class: "empty card" }, h("p", {}, !first
      ? "No more tasks on this page."
      : filtered
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
    ["Task", "Type", "Queue", "Status"].map((t) => h("th", {}, t)),
    sortHeader("Created", "created_at", filter, params), sortHeader("Updated", "updated_at", filter, params),
    h("th", {}, "Attempts"));
  const rows = state.items.map((t) => h("tr", { "data-task": t.id, "data-status": t.status },
    admin ? h("td", {}, h("input", { type: "checkbox", "aria-label": `Select task ${t.id.slice(0, 8)}`, checked: selected.has(t.id),
      disabled: state.busy, onchange: (/** @type {Event} */ e) => pick(t.id, /** @type {HTMLInputElement} */ (e.target).checked) })) : null,
    h("td", {}, link(`tasks/${t.id}`, h("code", {}, t.id.slice(0, 8)))),
    h("td", {}, t.type), h("td", {}, t.queue), h("td", {}, status(t.status)),
    h("td", {}, time(t.created_at)), h("td", {}, time(t.updated_at)),
    h("td", { class: "num" }, `${t.attempts}/${t.max_attempts}`)));
  const shown = state.cursors.length * PAGE;
  const pager = h("nav", { class: "row pager", "aria-label": "Pages" },
    h("span", { class: "muted", id: "task-total" }, `${count(shown + 1)}–${count(shown + state.items.length)} of ${state.estimated ? "about " : ""}${count(state.total)}`),
    h("button", { type: "button", disabled: first, onclick: () => turn(null) }, "← Previous"),
    h("button", { type: "button", disabled: !state.next, onclick: () => turn(state.next) }, "Next →"));
  return h("div", {}, h("div", { class: "scroll" }, h("table", {}, h("thead", {}, head), h("tbody", {}, rows))), pager);
}

function tools(state, selected, draw, run) {
  if (!can("tasks:admin")) return [];
  const n = state.allMatching ? state.total : selected.size;
  const out = [];
  const about = state.estimated ? "about " : "";
  const pageAll = state.items.length > 0 && state.items.every((t) => selected.has(t.id));
  if (pageAll && state.total > state.items.length && !state.allMatching) {
    out.push(h("span", { class: "notice" }, `All ${state.items.length} on this page are selected. `,
      h("button", { type: "button", onclick: () => { state.allMatching = true; draw(); } }, `Select all ${about}${count(state.total)} matching`)));
  } else if (state.allMatching) {
    out.push(h("span", { class: "notice" }, `All ${about}${count(state.total)} matching tasks are selected. `,
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
  const body = { action, filter };
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
