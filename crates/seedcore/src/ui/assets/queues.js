// @ts-check
/**
 * Queues: each with its tasks per status, paused or not, and pause/resume for holders of
 * `queues:admin` (the control is not shown to others; the API refuses them anyway).
 */

import { api, can } from "./api.js";
import { count, errorBox, h, link } from "./dom.js";
import { onChange, throttle } from "./live.js";
import { STATUSES } from "./overview.js";

/** @param {HTMLElement} main */
export function queues(main) {
  const body = h("div", {});
  main.append(h("h1", {}, "Queues"), body);
  let alive = true;
  const refresh = async () => {
    try {
      const { items: list } = await api("GET", "/api/v1/queues");
      if (alive) body.replaceChildren(view(list, refresh));
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

function view(list, refresh) {
  if (list.length === 0) {
    return h("div", { class: "empty card" }, h("p", {}, "No queues yet: a queue exists once a task names it (",
      link("tasks", "create a task"), ")."));
  }
  const admin = can("queues:admin");
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "Queue"), h("th", {}, "State"),
      STATUSES.map((s) => h("th", { class: "num" }, s)), admin ? h("th", {}, "Action") : null)),
    h("tbody", {}, list.map((q) => row(q, admin, refresh)))));
}

function row(q, admin, refresh) {
  const message = h("span", {});
  const act = async (verb, button) => {
    button.disabled = true;
    try {
      await api("POST", `/api/v1/queues/${encodeURIComponent(q.name)}/${verb}`);
      refresh();
    } catch (err) {
      message.replaceChildren(errorBox(err));
      button.disabled = false;
    }
  };
  const verb = q.paused ? "resume" : "pause";
  const button = h("button", { type: "button", onclick: () => act(verb, button) }, q.paused ? "Resume" : "Pause");
  return h("tr", { "data-queue": q.name },
    h("td", {}, q.name),
    h("td", {}, q.paused ? h("span", { class: "paused" }, "paused") : "active"),
    STATUSES.map((s) => h("td", { class: "num" }, count(q.counts[s] ?? 0))),
    admin ? h("td", {}, button, message) : null);
}
