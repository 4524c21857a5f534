// @ts-check
/**
 * Workflows: the list (newest first, status and counts per status) and, for one workflow, a
 * graph of its tasks in columns by depth with their statuses, redrawn live as they change;
 * cancel for holders of `tasks:admin`.
 */

import { api, can, query } from "./api.js";
import { navigate } from "./app.js";
import { count, errorBox, h, link, status, time } from "./dom.js";
import { onChange, throttle } from "./live.js";

const PAGE = 50;
const NODE_W = 160;
const NODE_H = 46;
const GAP_X = 70;
const GAP_Y = 18;
const SVG = "http://www.w3.org/2000/svg";

/** @param {HTMLElement} main @param {string[]} _params @param {URLSearchParams} search */
export function workflows(main, _params, search) {
  const offset = Math.max(0, Number(search.get("offset") ?? 0) || 0);
  const body = h("div", { "aria-live": "polite" });
  main.append(h("h1", {}, "Workflows"), body);
  let alive = true;
  const refresh = async () => {
    try {
      const page = await api("GET", `/api/v1/workflows${query({ limit: PAGE, offset })}`);
      if (alive) body.replaceChildren(list(page, offset));
    } catch (err) {
      if (alive) body.replaceChildren(errorBox(err));
    }
  };
  refresh();
  const stop = onChange(throttle(refresh, 800));
  return () => {
    alive = false;
    stop();
  };
}

function list(page, offset) {
  if (page.items.length === 0) {
    return h("div", { class: "empty card" }, h("p", {}, "No workflows yet: send ", h("code", {}, "POST /api/v1/workflows"),
      " with tasks that name the keys they depend on."));
  }
  return h("div", {}, h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, ["Workflow", "Name", "Status", "Tasks", "Created"].map((x) => h("th", {}, x)))),
    h("tbody", {}, page.items.map((w) => h("tr", { "data-workflow": w.id },
      h("td", {}, link(`workflows/${w.id}`, h("code", {}, w.id.slice(0, 8)))),
      h("td", {}, w.name), h("td", {}, status(w.status)),
      h("td", {}, Object.entries(w.counts).map(([s, n]) => `${count(n)} ${s}`).join(", ")),
      h("td", {}, time(w.created_at))))))),
  h("div", { class: "row" },
    h("span", { class: "muted" }, `${count(offset + 1)}–${count(offset + page.items.length)} of ${count(page.total)}`),
    offset > 0 ? link(`workflows?offset=${Math.max(0, offset - PAGE)}`, "← Newer") : null,
    offset + page.items.length < page.total ? link(`workflows?offset=${offset + PAGE}`, "Older →") : null));
}

/** @param {HTMLElement} main @param {string[]} params */
export function workflow(main, [id]) {
  const body = h("div", { "aria-live": "polite" });
  main.append(body);
  let alive = true;
  const refresh = async () => {
    try {
      const w = await api("GET", `/api/v1/workflows/${encodeURIComponent(id)}`);
      if (alive) body.replaceChildren(...detail(w, refresh));
    } catch (err) {
      if (alive) body.replaceChildren(h("h1", {}, "Workflow"), errorBox(err), link("workflows", "Back to the workflows"));
    }
  };
  refresh();
  const follow = throttle(refresh, 250);
  const stop = onChange((change) => {
    if (change === null || change.workflow_id === id) follow();
  });
  return () => {
    alive = false;
    stop();
  };
}

function detail(w, refresh) {
  const message = h("div", {});
  const cancel = can("tasks:admin") && w.status === "running"
    ? h("button", { type: "button", class: "danger", onclick: async () => {
      try {
        await api("POST", `/api/v1/workflows/${w.id}/cancel`);
        refresh();
      } catch (err) {
        message.replaceChildren(errorBox(err));
      }
    } }, "Cancel workflow")
    : null;
  return [
    h("h1", {}, `Workflow ${w.name} `, h("span", { id: "workflow-status", "data-status": w.status }, status(w.status))),
    h("div", { class: "toolbar" }, h("span", { class: "muted" }, Object.entries(w.counts).map(([s, n]) => `${count(n)} ${s}`).join(", ")), cancel),
    message,
    h("div", { class: "scroll graph" }, graph(w.tasks)),
    h("p", { class: "muted" }, "Select a task to open it."),
  ];
}

/** Columns by depth (the longest chain of parents), a row per task within its column. */
function layout(tasks) {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  /** @type {Map<string, number>} */
  const depth = new Map();
  const depthOf = (t, seen = new Set()) => {
    if (depth.has(t.id)) return /** @type {number} */ (depth.get(t.id));
    seen.add(t.id);
    const parents = t.depends_on.map((p) => byId.get(p)).filter((p) => p && !seen.has(p.id));
    const d = parents.length ? 1 + Math.max(...parents.map((p) => depthOf(p, seen))) : 0;
    depth.set(t.id, d);
    return d;
  };
  /** @type {Map<string, {x: number, y: number}>} */
  const at = new Map();
  const rows = [];
  for (const t of tasks) {
    const d = depthOf(t);
    rows[d] = (rows[d] ?? 0) + 1;
    at.set(t.id, { x: d * (NODE_W + GAP_X) + 8, y: (rows[d] - 1) * (NODE_H + GAP_Y) + 8 });
  }
  return { at, byId, width: rows.length * (NODE_W + GAP_X), height: Math.max(...rows, 1) * (NODE_H + GAP_Y) + 8 };
}

function graph(tasks) {
  const { at, byId, width, height } = layout(tasks);
  const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": "The workflow's tasks and their dependencies" });
  svg.append(el("defs", {}, el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
    el("path", { d: "M0,0 L10,5 L0,10 z", class: "edge-head" }))));
  for (const t of tasks) {
    for (const p of t.depends_on) {
      const from = at.get(p);
      const to = at.get(t.id);
      if (!from || !to || !byId.has(p)) continue;
      const x1 = from.x + NODE_W, y1 = from.y + NODE_H / 2, x2 = to.x, y2 = to.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      svg.append(el("path", { class: "edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)" }));
    }
  }
  for (const t of tasks) {
    const { x, y } = /** @type {{x: number, y: number}} */ (at.get(t.id));
    const open = () => navigate(`tasks/${t.id}`);
    const node = el("g", { class: `node s-${t.status}`, "data-key": t.workflow_key, "data-status": t.status, tabindex: 0, role: "link",
      "aria-label": `${t.workflow_key}: ${t.status}`, transform: `translate(${x},${y})` },
    el("rect", { width: NODE_W, height: NODE_H, rx: 8 }),
    el("text", { x: 10, y: 19, class: "node-key" }, t.workflow_key),
    el("text", { x: 10, y: 36, class: "node-status" }, `${t.type} · ${t.status}`));
    node.addEventListener("click", open);
    node.addEventListener("keydown", (/** @type {Event} */ e) => {
      if (/** @type {KeyboardEvent} */ (e).key === "Enter") open();
    });
    svg.append(node);
  }
  return svg;
}

/** An SVG element. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}
