// @ts-check
/**
 * The dashboard's entry: the navigation, the page router (History API, no reloads) and the
 * header's live control and session.
 *
 * A page is a function `(main, params, search) => cleanup?` that fills `main`; the router
 * calls the previous page's cleanup (unsubscribing from live updates, stopping timers)
 * before rendering the next.
 */

import { boot, url } from "./api.js";
import { h } from "./dom.js";
import { start } from "./live.js";
import { overview } from "./overview.js";
import { tasks } from "./tasks.js";
import { task } from "./task.js";
import { queues } from "./queues.js";
import { workers } from "./workers.js";
import { workflow, workflows } from "./workflows.js";
import { facts } from "./facts.js";
import { schedules } from "./schedules.js";

/** @type {[RegExp, Function][]} */
const ROUTES = [
  [/^$/, overview],
  [/^tasks$/, tasks],
  [/^tasks\/([^/]+)$/, task],
  [/^queues$/, queues],
  [/^workers$/, workers],
  [/^workflows$/, workflows],
  [/^workflows\/([^/]+)$/, workflow],
  [/^facts$/, facts],
  [/^schedules$/, schedules],
];

const PAGES = [["", "Overview"], ["tasks", "Tasks"], ["workflows", "Workflows"], ["schedules", "Schedules"],
  ["queues", "Queues"], ["workers", "Workers"], ["facts", "Facts"]];

const root = url("/ui");
/** @type {Function | undefined} */
let cleanup;

/** The page path below `/ui`, without slashes at either end. */
function pagePath() {
  const path = location.pathname.startsWith(root) ? location.pathname.slice(root.length) : "";
  return path.replace(/^\/+|\/+$/g, "");
}

/** Shows the page at `path` (below `/ui`) without reloading. */
export function navigate(path) {
  history.pushState(null, "", `${root}/${path}`);
  render();
}

function render() {
  if (typeof cleanup === "function") cleanup();
  cleanup = undefined;
  const main = /** @type {HTMLElement} */ (document.getElementById("main"));
  main.replaceChildren();
  const path = pagePath();
  const section = path.split("/")[0];
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("data-page") === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  for (const [pattern, page] of ROUTES) {
    const match = pattern.exec(path);
    if (match) {
      cleanup = page(main, match.slice(1).map(decodeURIComponent), new URLSearchParams(location.search));
      return;
    }
  }
  main.append(h("h1", {}, "Not found"),
    h("p", { class: "empty" }, "No page here. ", h("a", { href: `${root}/`, "data-link": true }, "Go to the overview.")));
}

function header() {
  const nav = /** @type {HTMLElement} */ (document.getElementById("nav"));
  nav.replaceChildren(...PAGES.map(([path, label]) =>
    h("a", { href: `${root}/${path}`, "data-link": true, "data-page": path }, label)));
  const who = /** @type {HTMLElement} */ (document.getElementById("who"));
  if (boot.auth === "session") {
    who.append(`${boot.name} · `, h("form", { method: "post", action: url("/ui/logout") },
      h("input", { type: "hidden", name: "csrf", value: boot.csrf }),
      h("button", { type: "submit" }, "Log out")));
  } else {
    who.append("open access");
  }
}

// Links inside the dashboard change the page without a reload; modified clicks open tabs.
document.addEventListener("click", (event) => {
  const target = /** @type {Element} */ (event.target);
  const a = target.closest?.("a[data-link]");
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  history.pushState(null, "", a.getAttribute("href"));
  render();
  document.getElementById("main")?.focus();
});
window.addEventListener("popstate", render);

header();
start(/** @type {HTMLElement} */ (document.getElementById("live")));
render();
