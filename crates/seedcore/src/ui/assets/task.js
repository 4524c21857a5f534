// @ts-check
/**
 * One task: its fields, parameters, result and error, its attempts, the audit timeline, its
 * parents and children (the tasks that depend on it), workflow and attached facts, and the actions the visitor's scopes allow (run
 * again, cancel, clone as a new task, retry with edited parameters as a new task, delete).
 * It follows the task's changes live; an open parameter editor survives the redraws.
 */

import { api, can, query } from "./api.js";
import { navigate } from "./app.js";
import { confirmDialog, errorBox, h, json, link, status, time } from "./dom.js";
import { onChange, throttle } from "./live.js";

const FINISHED = ["completed", "failed", "cancelled"];
/** Children listed on the page; the rest are a link away. */
const CHILDREN = 20;

/** @param {HTMLElement} main @param {string[]} params */
export function task(main, [id]) {
  const body = h("div", { "aria-live": "polite" });
  const editor = h("div", {});
  main.append(body);
  let alive = true;
  let fullId = id;
  const refresh = async () => {
    try {
      const [t, events] = await Promise.all([
        api("GET", `/api/v1/tasks/${encodeURIComponent(id)}`),
        api("GET", `/api/v1/tasks/${encodeURIComponent(id)}/events`).then((e) => e.items),
      ]);
      fullId = t.id;
      const children = await api("GET", `/api/v1/tasks${query({ parent: t.id, limit: CHILDREN, count: "estimate" })}`);
      if (alive) body.replaceChildren(...view(t, events, children, refresh, editor));
    } catch (err) {
      if (alive) body.replaceChildren(h("h1", {}, "Task"), errorBox(err), link("tasks", "Back to the tasks"));
    }
  };
  refresh();
  const follow = throttle(refresh, 250);
  const stop = onChange((change) => {
    if (change === null || change.task_id === fullId) follow();
  });
  return () => {
    alive = false;
    stop();
  };
}

function view(t, events, children, refresh, editor) {
  const message = h("div", {});
  const act = async (/** @type {() => Promise<any>} */ call) => {
    message.replaceChildren();
    try {
      await call();
      refresh();
    } catch (err) {
      message.replaceChildren(errorBox(err));
    }
  };
  const actions = h("div", { class: "toolbar" });
  if (can("tasks:admin") && ["created", "failed", "cancelled"].includes(t.status)) {
    actions.append(h("button", { type: "button", class: "primary", onclick: () => act(() => api("POST", `/api/v1/tasks/${t.id}/run`)) }, "Run again"));
  }
  if (can("tasks:admin") && !FINISHED.includes(t.status)) {
    actions.append(h("button", { type: "button", class: "danger", onclick: () => act(() => api("POST", `/api/v1/tasks/${t.id}/cancel`)) }, "Cancel"));
  }
  if (can("tasks:write")) {
    actions.append(h("button", { type: "button", onclick: () => act(async () => {
      const copy = await api("POST", "/api/v1/tasks", clone(t));
      navigate(`tasks/${copy.id}`);
    }) }, "Clone as new task"));
  }
  if (can("tasks:write")) {
    actions.append(h("button", { type: "button", onclick: () => editor.replaceChildren(editForm(t, message)) }, "Retry with edited parameters"));
  }
  if (can("tasks:admin") && FINISHED.includes(t.status)) {
    actions.append(h("button", { type: "button", class: "danger", onclick: async () => {
      if (!(await confirmDialog("Delete this task and its audit trail?", "Delete"))) return;
      act(async () => {
        await api("DELETE", `/api/v1/tasks/${t.id}`);
        navigate("tasks");
      });
    } }, "Delete"));
  }
  return [
    h("h1", {}, `Task ${t.id.slice(0, 8)} `, h("span", { id: "task-status", "data-status": t.status }, status(t.status))),
    actions, message, editor,
    h("div", { class: "grid" },
      h("section", { class: "card" }, h("h2", {}, "Task"), fields(t, children)),
      h("section", { class: "card" }, h("h2", {}, "Parameters"), json(t.params),
        h("h2", {}, "Result"), t.result === null ? h("p", { class: "muted" }, "No result yet.") : json(t.result),
        t.error ? [h("h2", {}, "Error"), h("pre", { class: "error" }, t.error)] : null)),
    h("section", {}, h("h2", {}, "Attempts"), attempts(events)),
    h("section", {}, h("h2", {}, "Audit trail"), timeline(events)),
  ];
}

/** The tasks that depend on this one, each a link, with the whole list a link away. */
function childLinks(t, children) {
  if (!children.items.length) return "—";
  const links = children.items.map((c) => [link(`tasks/${c.id}`, h("code", {}, c.id.slice(0, 8))), " "]);
  const more = children.next_cursor
    ? link(`tasks?parent=${t.id}`, `all ${children.total_is_estimate ? "about " : ""}${children.total}`)
    : null;
  return h("span", { id: "task-children" }, links, more);
}

function fields(t, children) {
  const rows = [
    ["Id", h("code", {}, t.id)], ["Type", t.type], ["Queue", t.queue], ["Priority", t.priority],
    ["Domain", t.domain ?? "—"], ["Description", t.description || "—"],
    ["Attempts", `${t.attempts} of ${t.max_attempts}`],
    ["Progress", t.progress == null ? "—" : `${Math.round(t.progress * 100)} %`],
    ["Created", time(t.created_at)],
    ["Run at", time(t.run_at)], ["Started", time(t.started_at)], ["Finished", time(t.finished_at)],
    ["Worker", t.worker_id ? h("code", {}, t.worker_id) : "—"],
    ["Parents", t.depends_on.length ? t.depends_on.map((p) => [link(`tasks/${p}`, h("code", {}, p.slice(0, 8))), " "]) : "—"],
    ["Children", childLinks(t, children)],
    ["Workflow", t.workflow_id ? [link(`workflows/${t.workflow_id}`, h("code", {}, t.workflow_id.slice(0, 8))), ` (${t.workflow_key})`] : "—"],
    ["Facts", t.attached_fact_ids.length ? t.attached_fact_ids.map((f) => [h("code", {}, f.slice(0, 8)), " "]) : "—"],
  ];
  return h("dl", { class: "fields" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

/** Each attempt from the trail: the claim that began it and the event that ended it. */
function attempts(events) {
  const list = [];
  for (const e of events) {
    if (e.kind === "claimed") list.push({ worker: e.worker_id, start: e.at, end: null, outcome: "running", error: null });
    else if (list.length && list[list.length - 1].end === null && e.from_status === "running") {
      Object.assign(list[list.length - 1], { end: e.at, outcome: e.kind, error: e.error });
    }
  }
  if (!list.length) return h("p", { class: "muted" }, "Not run yet.");
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, ["#", "Worker", "Started", "Duration", "Outcome", "Error"].map((x) => h("th", {}, x)))),
    h("tbody", {}, list.map((a, i) => h("tr", {},
      h("td", {}, i + 1), h("td", {}, a.worker ? h("code", {}, a.worker) : "—"), h("td", {}, time(a.start)),
      h("td", { class: "num" }, a.end ? `${((Date.parse(a.end) - Date.parse(a.start)) / 1000).toFixed(2)} s` : "—"),
      h("td", {}, a.outcome), h("td", {}, a.error ?? ""))))));
}

function timeline(events) {
  if (!events.length) return h("p", { class: "muted" }, "No events.");
  return h("ol", { class: "timeline" }, events.map((e) => h("li", { "data-kind": e.kind },
    time(e.at), " · ", h("b", {}, e.kind), " ",
    e.from_status ? [status(e.from_status), " → "] : "", status(e.to_status),
    e.actor ? h("span", { class: "muted" }, ` by ${typeof e.actor === "string" ? e.actor : JSON.stringify(e.actor)}`) : "",
    e.error ? h("div", { class: "error" }, e.error) : "")));
}

/** A form to run a copy of `t` with other parameters (the task itself keeps its own). */
function editForm(t, message) {
  const params = /** @type {HTMLTextAreaElement} */ (h("textarea", { id: "retry-params", "aria-label": "Parameters (JSON)" }, JSON.stringify(t.params, null, 2)));
  const submit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    let edited;
    try {
      edited = JSON.parse(params.value);
    } catch {
      message.replaceChildren(errorBox("Parameters must be JSON"));
      return;
    }
    try {
      const copy = await api("POST", "/api/v1/tasks", { ...clone(t), params: edited });
      navigate(`tasks/${copy.id}`);
    } catch (err) {
      message.replaceChildren(errorBox(err));
    }
  };
  return h("form", { class: "card", onsubmit: submit },
    h("label", { for: "retry-params" }, "Parameters of the new attempt, as a new task (this one stays as it is)"), params,
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Run with these parameters")));
}

/** The create request that makes a copy of `t`. */
function clone(t) {
  return {
    type: t.type, params: t.params, description: t.description, domain: t.domain ?? undefined,
    queue: t.queue, priority: t.priority, max_attempts: t.max_attempts,
    timeout_seconds: t.timeout_seconds ?? undefined, run_immediately: true,
  };
}
