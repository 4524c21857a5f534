// @ts-check
/**
 * Schedules: the list with the next fire times, the last fire and the task it made; under
 * each schedule its last fires (scheduled or manual, with the task's status now); pause,
 * resume, trigger now, edit and delete for holders of `schedules:admin`, and a form whose
 * cron expression is checked as it is typed (the next five fire times, or why it is refused).
 *
 * A trigger's task goes to the top of its schedule's fires at once; the page's refresh (on
 * task events) brings the statuses up to date. A refused trigger's message stays beside its
 * button across refreshes until the next trigger of that schedule succeeds.
 */

import { api, can, query } from "./api.js";
import { confirmDialog, errorBox, h, link, status, time } from "./dom.js";
import { onChange, throttle } from "./live.js";

/** How many of its last fires each schedule shows. */
const FIRES_SHOWN = 5;

/** @param {HTMLElement} main */
export function schedules(main) {
  const body = h("div", { "aria-live": "polite" });
  const editor = h("div", {});
  let alive = true;
  /** Why the last trigger of a schedule failed, by schedule id. */
  const refusals = new Map();
  const refresh = async () => {
    try {
      const page = await api("GET", "/api/v1/schedules?limit=1000");
      const fires = await lastFires(page.items);
      if (alive) body.replaceChildren(view(page.items, fires, refusals, refresh, (s) => editor.replaceChildren(form(s, refresh, () => editor.replaceChildren(newButton())))));
    } catch (err) {
      if (alive) body.replaceChildren(errorBox(err));
    }
  };
  const newButton = () => can("schedules:admin")
    ? h("button", { type: "button", class: "primary", onclick: () => editor.replaceChildren(form(null, refresh, () => editor.replaceChildren(newButton()))) }, "New schedule")
    : "";
  editor.append(newButton());
  main.append(h("h1", {}, "Schedules"), editor, body);
  refresh();
  // A fire makes a task: the last fire and next times move with the task events.
  const stop = onChange(throttle(refresh, 1000));
  return () => {
    alive = false;
    stop();
  };
}

/** Each schedule's last fires, or the error that kept them from being read, by schedule id. */
async function lastFires(items) {
  const read = await Promise.all(items.map(async (s) => {
    try {
      return [s.id, (await api("GET", `/api/v1/schedules/${s.id}/fires?limit=${FIRES_SHOWN}`)).items];
    } catch (err) {
      return [s.id, err instanceof Error ? err : new Error(String(err))];
    }
  }));
  return new Map(read);
}

function view(items, fires, refusals, refresh, edit) {
  if (items.length === 0) {
    return h("div", { class: "empty card" }, h("p", {}, "No schedules yet: ",
      can("schedules:admin") ? "create one with New schedule." : "one with schedules:admin can create them."));
  }
  const admin = can("schedules:admin");
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, ["Schedule", "Cron", "Task", "State", "Next fires", "Last fire", admin ? "Action" : null]
      .filter(Boolean).map((x) => h("th", {}, x)))),
    h("tbody", {}, items.flatMap((s) => [row(s, admin, refresh, edit), firesRow(s, fires.get(s.id), admin, refusals, admin ? 7 : 6)]))));
}

/** The row under a schedule: its last fires, and the trigger button for `schedules:admin`. */
function firesRow(s, fires, admin, refusals, span) {
  const list = h("ol", { class: "fires", "aria-label": `Last fires of ${s.name}` },
    Array.isArray(fires) ? fires.map(fireItem) : []);
  const message = h("span", { class: "fire-message" }, refusals.has(s.id) ? errorBox(refusals.get(s.id)) : "");
  const button = /** @type {HTMLButtonElement} */ (h("button", { type: "button", onclick: async () => {
    button.disabled = true;
    try {
      const task = await api("POST", `/api/v1/schedules/${s.id}/trigger`);
      refusals.delete(s.id);
      message.replaceChildren();
      list.querySelector(".none")?.remove();
      list.prepend(fireItem({ fired_at: task.created_at, manual: true, task_id: task.id, task }));
      while (list.children.length > FIRES_SHOWN) list.lastElementChild?.remove();
    } catch (err) {
      refusals.set(s.id, err);
      message.replaceChildren(errorBox(err));
    } finally {
      button.disabled = false;
    }
  } }, "Trigger now"));
  if (Array.isArray(fires) && fires.length === 0) list.append(h("li", { class: "none muted" }, "no fires yet"));
  return h("tr", { class: "fires-row", "data-fires": s.name },
    h("td", { colspan: span },
      h("div", { class: "fires-bar" },
        h("span", { class: "muted" }, "Last fires"),
        admin ? button : null,
        message),
      fires instanceof Error ? errorBox(fires) : list));
}

/** One fire: when (the viewer's zone, UTC on hover), whether manual, its task's status now. */
function fireItem(fire) {
  return h("li", { "data-task": fire.task_id, "data-manual": fire.manual ? "true" : "false" },
    time(fire.fired_at), " ",
    fire.manual ? h("span", { class: "manual" }, "manual") : null, " ",
    fire.task ? status(fire.task.status) : h("span", { class: "muted" }, "task gone"), " ",
    fire.task ? link(`tasks/${fire.task_id}`, "task") : null);
}

function row(s, admin, refresh, edit) {
  const message = h("div", {});
  const act = async (/** @type {() => Promise<any>} */ call) => {
    try {
      await call();
      refresh();
    } catch (err) {
      message.replaceChildren(errorBox(err));
    }
  };
  return h("tr", { "data-schedule": s.name },
    h("td", {}, s.name),
    h("td", {}, h("code", {}, s.cron), h("div", { class: "muted" }, s.timezone)),
    h("td", {}, s.task.type, h("div", { class: "muted" }, s.task.queue)),
    h("td", {}, s.enabled ? "active" : h("span", { class: "paused" }, "paused")),
    h("td", {}, s.next_fire_times.length ? s.next_fire_times.slice(0, 2).map((t) => h("div", {}, time(t))) : h("span", { class: "muted" }, "—")),
    h("td", {}, s.last_fire_at ? [time(s.last_fire_at), " ", s.last_task_id ? link(`tasks/${s.last_task_id}`, "task") : ""] : h("span", { class: "muted" }, "never")),
    admin ? h("td", {},
      h("button", { type: "button", onclick: () => act(() => api("PATCH", `/api/v1/schedules/${s.id}`, { enabled: !s.enabled })) }, s.enabled ? "Pause" : "Resume"), " ",
      h("button", { type: "button", onclick: () => edit(s) }, "Edit"), " ",
      h("button", { type: "button", class: "danger", onclick: async () => {
        if (await confirmDialog(`Delete schedule ${s.name}? The tasks it made stay.`, "Delete")) act(() => api("DELETE", `/api/v1/schedules/${s.id}`));
      } }, "Delete"), message) : null);
}

/** The create (schedule null) or edit form. */
function form(s, refresh, close) {
  const message = h("div", {});
  const preview = h("div", { id: "cron-preview", "aria-live": "polite" });
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const cron = /** @type {HTMLInputElement} */ (h("input", { id: "e-cron", name: "cron", required: true, value: s?.cron ?? "", placeholder: "*/5 * * * *", autocomplete: "off" }));
  const tz = /** @type {HTMLInputElement} */ (h("input", { id: "e-tz", name: "timezone", value: s?.timezone ?? "UTC", list: "zones" }));
  let asked = 0;
  const check = throttle(async () => {
    const mine = ++asked;
    if (!cron.value.trim()) {
      preview.replaceChildren();
      return;
    }
    try {
      const { next_fire_times } = await api("GET", `/ui/api/cron${query({ cron: cron.value, timezone: tz.value })}`);
      if (mine === asked) preview.replaceChildren(h("p", { class: "muted" }, "Next fires:"), h("ol", {}, next_fire_times.map((t) => h("li", {}, time(t)))));
    } catch (err) {
      if (mine === asked) preview.replaceChildren(errorBox(err));
    }
  }, 250);
  cron.addEventListener("input", check);
  tz.addEventListener("input", check);
  if (s) check();
  const submit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    const data = new FormData(/** @type {HTMLFormElement} */ (e.target));
    let params;
    try {
      params = JSON.parse(String(data.get("params") || "{}"));
    } catch {
      message.replaceChildren(errorBox("Parameters must be JSON, e.g. {\"kind\": \"daily\"}"));
      return;
    }
    const body = {
      name: data.get("name"), cron: data.get("cron"), timezone: data.get("timezone") || "UTC",
      misfire_policy: data.get("misfire"),
      task: { type: data.get("type"), params, queue: data.get("queue") || "default" },
    };
    try {
      if (s) await api("PATCH", `/api/v1/schedules/${s.id}`, body);
      else await api("POST", "/api/v1/schedules", body);
      close();
      refresh();
    } catch (err) {
      message.replaceChildren(errorBox(err));
    }
  };
  return h("form", { class: "card", onsubmit: submit, "aria-label": s ? `Edit schedule ${s.name}` : "New schedule" },
    h("h2", {}, s ? `Edit ${s.name}` : "New schedule"),
    h("div", { class: "filters" },
      h("div", {}, h("label", { for: "e-name" }, "Name"), h("input", { id: "e-name", name: "name", required: true, value: s?.name ?? "" })),
      h("div", {}, h("label", { for: "e-cron" }, "Cron (5 or 6 fields, or @daily…)"), cron),
      h("div", {}, h("label", { for: "e-tz" }, "Time zone"), tz,
        h("datalist", { id: "zones" }, h("option", { value: "UTC" }), h("option", { value: zone }))),
      h("div", {}, h("label", { for: "e-misfire" }, "Missed fires"), h("select", { id: "e-misfire", name: "misfire" },
        h("option", { value: "run_once", selected: s?.misfire_policy !== "skip" }, "run once"),
        h("option", { value: "skip", selected: s?.misfire_policy === "skip" }, "skip")))),
    preview,
    h("div", { class: "filters" },
      h("div", {}, h("label", { for: "e-type" }, "Task type"), h("input", { id: "e-type", name: "type", required: true, value: s?.task.type ?? "echo" })),
      h("div", {}, h("label", { for: "e-queue" }, "Queue"), h("input", { id: "e-queue", name: "queue", value: s?.task.queue ?? "default" }))),
    h("label", { for: "e-params" }, "Task parameters (JSON)"),
    h("textarea", { id: "e-params", name: "params" }, JSON.stringify(s?.task.params ?? {})),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, s ? "Save" : "Create schedule"),
      h("button", { type: "button", onclick: close }, "Discard")),
    message);
}
