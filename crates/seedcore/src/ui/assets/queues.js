// @ts-check
/**
 * Queues: each with its tasks per status, paused or not, its concurrency limit, and for
 * holders of `queues:admin` pause/resume and an inline edit of the limit (empty: no limit).
 * The controls are not shown to others; the API refuses them anyway. The limit is checked by
 * the API alone: its answer, error included, is shown beside the field.
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
    // A live update would replace the limit being typed; the next one comes soon enough.
    if (body.contains(document.activeElement) && document.activeElement?.tagName === "INPUT") return;
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
    h("thead", {}, h("tr", {}, h("th", {}, "Queue"), h("th", {}, "State"), h("th", {}, "Limit"),
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
    h("td", { class: "limit" }, admin ? limitEditor(q, refresh) : limitText(q)),
    STATUSES.map((s) => h("td", { class: "num" }, count(q.counts[s] ?? 0))),
    admin ? h("td", {}, button, message) : null);
}

function limitText(q) {
  return h("span", { class: "limit-value" }, q.concurrency == null ? "none" : count(q.concurrency));
}

/** The limit in a number field with Save; an empty field saves "no limit". */
function limitEditor(q, refresh) {
  const message = h("span", { class: "limit-message" });
  const input = /** @type {HTMLInputElement} */ (h("input", {
    type: "number", min: "1", step: "1", inputmode: "numeric", placeholder: "none",
    "aria-label": `Concurrency limit of ${q.name}`, value: q.concurrency == null ? "" : String(q.concurrency),
  }));
  const save = h("button", { type: "submit" }, "Save");
  const submit = async (/** @type {Event} */ event) => {
    event.preventDefault();
    message.replaceChildren();
    if (input.validity.badInput) {
      message.replaceChildren(errorBox("Enter a whole number, or leave the field empty for no limit."));
      return;
    }
    const concurrency = input.value.trim() === "" ? null : Number(input.value);
    save.disabled = true;
    try {
      await api("PATCH", `/api/v1/queues/${encodeURIComponent(q.name)}`, { concurrency });
      input.blur();
      refresh();
    } catch (err) {
      message.replaceChildren(errorBox(err));
    } finally {
      save.disabled = false;
    }
  };
  return h("form", { class: "limit-form", novalidate: true, onsubmit: submit }, limitText(q), input, save, message);
}
