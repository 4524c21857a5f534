// @ts-check
/**
 * The overview: every queue with its tasks per status, whether it is paused and how long its
 * oldest ready task has waited, with totals over all queues; refreshed on every change. Below,
 * charts of the last hour from `GET /api/v1/stats/tasks` (completed, failed, run and waiting
 * time per minute), drawn as inline SVG; they refresh every 15 s and on changes, at most every
 * few seconds, since each read aggregates an hour of finished tasks.
 */

import { api } from "./api.js";
import { count, duration, errorBox, h, link, pageUrl } from "./dom.js";
import { onChange, throttle } from "./live.js";

export const STATUSES = ["created", "blocked", "queued", "retry", "running", "completed", "failed", "cancelled"];

/** @param {HTMLElement} main */
export function overview(main) {
  const body = h("div", { "aria-live": "polite" });
  const charts = h("section", { class: "charts", "aria-labelledby": "charts-title" });
  main.append(h("h1", {}, "Overview"), body, charts);
  const stopCharts = lastHour(charts);
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
    stopCharts();
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

const CHART_REFRESH_MS = 15_000;
/** Live changes re-read the charts at most this often. */
const CHART_THROTTLE_MS = 3_000;
const SVG = "http://www.w3.org/2000/svg";
/** The drawing's own units; it scales to the card's width. */
const W = 320, H = 150, LEFT = 44, RIGHT = 8, TOP = 10, BOTTOM = 22;

/**
 * Keeps the last hour's charts in `section` fresh until the returned function is called.
 * @param {HTMLElement} section
 */
function lastHour(section) {
  let alive = true;
  /** @type {Record<string, number>} the bucket each chart shows in its readout */
  const picked = {};
  const refresh = async () => {
    try {
      const stats = await api("GET", "/api/v1/stats/tasks?minutes=60");
      if (!alive) return;
      const focused = document.activeElement?.closest?.("[data-chart]")?.getAttribute("data-chart");
      section.replaceChildren(...chartsView(stats, picked));
      if (focused) /** @type {HTMLElement | null} */ (section.querySelector(`[data-chart="${focused}"] svg`))?.focus();
    } catch (err) {
      if (alive) section.replaceChildren(h("h2", { id: "charts-title" }, "Last hour"), errorBox(err));
    }
  };
  refresh();
  const timer = window.setInterval(refresh, CHART_REFRESH_MS);
  const stop = onChange(throttle(refresh, CHART_THROTTLE_MS));
  return () => {
    alive = false;
    window.clearInterval(timer);
    stop();
  };
}

/** The four charts, or one line when nothing finished. */
function chartsView(stats, picked) {
  const title = h("h2", { id: "charts-title" }, "Last hour");
  const buckets = stats.buckets;
  const sum = (key) => buckets.reduce((n, b) => n + b[key], 0);
  if (sum("completed") + sum("failed") + sum("cancelled") === 0) {
    return [title, h("p", { class: "empty card" }, "No task finished in the last hour")];
  }
  const per = perBucket(stats.bucket_seconds);
  const pct = (key, p) => buckets.map((b) => b[key]?.[p] ?? null);
  const specs = [
    { key: "completed", title: `Completed ${per}`, unit: "count", total: sum("completed"),
      series: [{ name: "completed", cls: "c-completed", values: buckets.map((b) => b.completed) }] },
    { key: "failed", title: `Failed ${per}`, unit: "count", total: sum("failed"),
      series: [{ name: "failed", cls: "c-failed", values: buckets.map((b) => b.failed) }] },
    { key: "run", title: "Run time", unit: "ms",
      series: [{ name: "p50", cls: "c-p50", values: pct("run_ms", "p50") },
        { name: "p95", cls: "c-p95", values: pct("run_ms", "p95") }] },
    { key: "wait", title: "Waiting time", unit: "ms",
      series: [{ name: "p50", cls: "c-p50", values: pct("wait_ms", "p50") },
        { name: "p95", cls: "c-p95", values: pct("wait_ms", "p95") }] },
  ];
  return [title, h("div", { class: "chart-grid" }, specs.map((spec) => chart(spec, buckets, picked)))];
}

/** "per minute", or per the bucket size the server chose. */
function perBucket(seconds) {
  return seconds === 60 ? "per minute" : `per ${duration(seconds)}`;
}

/** What a chart says as a whole, for screen readers and as its tooltip. */
function summary(spec) {
  if (spec.unit === "count") return `${spec.title}, last hour: ${count(spec.total)} in all`;
  const highest = (s) => Math.max(...s.values.filter((v) => v !== null));
  const [p50, p95] = spec.series;
  if (!p50.values.some((v) => v !== null)) return `${spec.title}, last hour: no task to measure`;
  return `${spec.title}, last hour: p50 up to ${ms(highest(p50))}, p95 up to ${ms(highest(p95))}`;
}

/** A value as the chart's unit reads. */
function show(spec, value) {
  if (value === null) return "none";
  return spec.unit === "ms" ? ms(value) : count(value);
}

/** Milliseconds for people: 2.5 ms, 12 ms, 3.4 s, 2.5 min. */
function ms(value) {
  if (value < 10) return `${Number(value.toFixed(1))} ms`;
  if (value < 1000) return `${Math.round(value)} ms`;
  if (value < 60_000) return `${(value / 1000).toFixed(1)} s`;
  return `${(value / 60_000).toFixed(1)} min`;
}

/** A bucket's start as a time in the viewer's zone. */
function clock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** The smallest of 1, 2, 2.5, 5 times a power of ten at or above `value` (1 for 0). */
function niceCeil(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((n) => n >= value) ?? 10 * power;
}

/** An SVG element; children as for `h`. */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children.flat(Infinity)) if (child) el.append(child);
  return el;
}

/**
 * One chart: axes with a few labelled ticks, the series (bars for counts, lines for times), a
 * column per bucket whose title gives the exact values, and a readout the keyboard moves along
 * (arrow keys, Home, End) while the chart has focus.
 */
function chart(spec, buckets, picked) {
  const n = buckets.length;
  const top = niceCeil(Math.max(0, ...spec.series.flatMap((x) => x.values.filter((v) => v !== null))));
  const x = (i) => LEFT + ((W - LEFT - RIGHT) * i) / n;
  const y = (v) => H - BOTTOM - ((H - BOTTOM - TOP) * v) / top;
  const step = (W - LEFT - RIGHT) / n;
  const describe = (i) => `${clock(buckets[i].start)}: ${spec.series.map((x) => `${x.name} ${show(spec, x.values[i])}`).join(", ")}`;
  const readout = h("p", { class: "chart-readout muted", "aria-live": "polite" });
  const marker = s("rect", { class: "chart-marker", y: TOP, width: step, height: H - BOTTOM - TOP, visibility: "hidden" });
  const pick = (i) => {
    picked[spec.key] = i;
    marker.setAttribute("x", String(x(i)));
    marker.setAttribute("visibility", "visible");
    readout.textContent = describe(i);
  };
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": summary(spec), tabindex: 0 },
    s("title", {}, summary(spec)),
    axes(spec, buckets, top, x, y),
    marker,
    spec.series.map((series) => spec.unit === "count" ? bars(series, x, y, step) : line(series, x, y, step)),
    buckets.map((_, i) => {
      const column = s("rect", { class: "chart-hit", x: x(i), y: TOP, width: step, height: H - BOTTOM - TOP },
        s("title", {}, describe(i)));
      column.addEventListener("mouseenter", () => pick(i));
      return column;
    }));
  svg.addEventListener("focus", () => pick(picked[spec.key] ?? n - 1));
  svg.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: -1, ArrowRight: 1, Home: -n, End: n };
    const move = moves[/** @type {KeyboardEvent} */ (event).key];
    if (move === undefined) return;
    event.preventDefault();
    pick(Math.min(n - 1, Math.max(0, (picked[spec.key] ?? n - 1) + move)));
  });
  if (picked[spec.key] !== undefined) pick(Math.min(picked[spec.key], n - 1));
  const legend = spec.series.length > 1
    ? h("span", { class: "chart-legend" }, spec.series.map((x) => h("span", { class: x.cls }, x.name)))
    : null;
  return h("figure", { class: "chart card", "data-chart": spec.key },
    h("figcaption", {}, spec.title, legend), svg, readout);
}

/** Gridlines with their values up the side (halfway too, unless it is a fraction of a task),
 * and three times along the bottom: the first bucket, the middle one and the latest. */
function axes(spec, buckets, top, x, y) {
  const n = buckets.length;
  const values = spec.unit === "count" && !Number.isInteger(top / 2) ? [0, top] : [0, top / 2, top];
  const ticks = values.map((v) => [
    s("line", { class: "chart-grid-line", x1: LEFT, x2: W - RIGHT, y1: y(v), y2: y(v) }),
    s("text", { class: "chart-tick", x: LEFT - 4, y: y(v) + 3, "text-anchor": "end" }, show(spec, v)),
  ]);
  const anchors = ["start", "middle", "end"];
  const times = [0, Math.floor(n / 2), n - 1].map((i, k) =>
    s("text", { class: "chart-tick", x: k === 2 ? W - RIGHT : x(i), y: H - 6, "text-anchor": anchors[k] }, clock(buckets[i].start)));
  return [ticks, times];
}

function bars(series, x, y, step) {
  return series.values.map((v, i) => v
    ? s("rect", { class: `chart-bar ${series.cls}`, x: x(i) + step * 0.1, y: y(v), width: step * 0.8, height: y(0) - y(v) })
    : null);
}

/** A line through the known values, broken where a bucket has none, with a dot on each. */
function line(series, x, y, step) {
  const runs = [];
  let run = [];
  series.values.forEach((v, i) => {
    if (v === null) {
      if (run.length) runs.push(run);
      run = [];
    } else run.push(`${x(i) + step / 2},${y(v)}`);
  });
  if (run.length) runs.push(run);
  return s("g", { class: `chart-line ${series.cls}` },
    runs.map((points) => s("polyline", { points: points.join(" ") })),
    runs.flat().map((point) => {
      const [cx, cy] = point.split(",");
      return s("circle", { cx, cy, r: 2.2 });
    }));
}
