// @ts-check
/**
 * Facts: search by substring or full text, with a tag filter and the tags by use; create,
 * edit and delete for holders of `facts:write`. The search is kept in the address.
 */

import { api, can, query } from "./api.js";
import { navigate } from "./app.js";
import { confirmDialog, count, errorBox, h, link, time } from "./dom.js";

const PAGE = 50;

/** @param {HTMLElement} main @param {string[]} _params @param {URLSearchParams} search */
export function facts(main, _params, search) {
  const filter = { mode: search.get("mode") === "text" ? "text" : "substring", q: search.get("q") ?? "", tag: search.get("tag") ?? "" };
  const offset = Math.max(0, Number(search.get("offset") ?? 0) || 0);
  const list = h("div", { "aria-live": "polite" });
  const tags = h("div", {});
  let alive = true;
  const refresh = async () => {
    const params = { [filter.mode === "text" ? "search" : "q"]: filter.q, tag: filter.tag, limit: PAGE, offset };
    try {
      const [page, used] = await Promise.all([
        api("GET", `/api/v1/facts${query(params)}`),
        api("GET", "/api/v1/tags?limit=30"),
      ]);
      if (!alive) return;
      list.replaceChildren(view(page, filter, offset, refresh));
      tags.replaceChildren(tagCloud(used.items, filter));
    } catch (err) {
      if (alive) list.replaceChildren(errorBox(err));
    }
  };
  main.append(h("h1", {}, "Facts"), can("facts:write") ? createForm(refresh) : "", searchForm(filter), tags, list);
  refresh();
  return () => { alive = false; };
}

function searchForm(filter) {
  return h("form", { class: "filters", role: "search", onsubmit: (/** @type {Event} */ e) => {
    e.preventDefault();
    const data = new FormData(/** @type {HTMLFormElement} */ (e.target));
    navigate(`facts${query({ q: data.get("q"), mode: data.get("mode") === "text" ? "text" : "", tag: data.get("tag") })}`);
  } },
  h("div", {}, h("label", { for: "s-q" }, "Search"), h("input", { id: "s-q", name: "q", value: filter.q, placeholder: "words or text" })),
  h("div", {}, h("label", { for: "s-mode" }, "Match"), h("select", { id: "s-mode", name: "mode" },
    h("option", { value: "substring", selected: filter.mode === "substring" }, "substring of text or metadata"),
    h("option", { value: "text", selected: filter.mode === "text" }, "full text (words, \"phrases\", -not)"))),
  h("div", {}, h("label", { for: "s-tag" }, "Tag"), h("input", { id: "s-tag", name: "tag", value: filter.tag, placeholder: "any" })),
  h("button", { type: "submit", class: "primary" }, "Search"),
  link("facts", "Clear"));
}

function tagCloud(items, filter) {
  if (!items.length) return "";
  return h("p", { class: "row" }, h("span", { class: "muted" }, "Tags by use:"),
    items.map((t) => link(`facts${query({ ...filter, mode: filter.mode === "text" ? "text" : "", tag: t.tag })}`, `${t.tag} (${count(t.count)})`)));
}

function view(page, filter, offset, refresh) {
  if (page.items.length === 0) {
    return h("div", { class: "empty card" }, h("p", {}, filter.q || filter.tag
      ? "No fact matches: try other words, the other kind of match, or clear the filters."
      : "No facts yet: add one above, or send POST /api/v1/facts."));
  }
  const here = (/** @type {number} */ at) => `facts${query({ ...filter, mode: filter.mode === "text" ? "text" : "", offset: at || "" })}`;
  return h("div", {},
    h("div", { class: "scroll" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Fact", "Tags", "Metadata", "Updated", can("facts:write") ? "Action" : null].filter(Boolean).map((x) => h("th", {}, x)))),
      h("tbody", {}, page.items.map((f) => row(f, refresh))))),
    h("div", { class: "row" },
      h("span", { class: "muted" }, page.total === null ? "" : `${count(offset + 1)}–${count(offset + page.items.length)} of ${count(page.total)}`),
      offset > 0 ? link(here(Math.max(0, offset - PAGE)), "← Previous") : null,
      page.items.length === PAGE ? link(here(offset + PAGE), "Next →") : null));
}

function row(f, refresh) {
  const message = h("div", {});
  const tr = h("tr", { "data-fact": f.id },
    h("td", { class: "wrap" }, f.text),
    h("td", {}, f.tags.join(", ")),
    h("td", {}, h("code", {}, JSON.stringify(f.meta_data))),
    h("td", {}, time(f.updated_at)),
    can("facts:write") ? h("td", {},
      h("button", { type: "button", onclick: () => tr.replaceWith(editRow(f, refresh)) }, "Edit"), " ",
      h("button", { type: "button", class: "danger", onclick: async () => {
        if (!(await confirmDialog("Delete this fact?", "Delete"))) return;
        try {
          await api("DELETE", `/api/v1/facts/${f.id}`);
          refresh();
        } catch (err) {
          message.replaceChildren(errorBox(err));
        }
      } }, "Delete"), message) : null);
  return tr;
}

function editRow(f, refresh) {
  const message = h("div", {});
  const text = h("textarea", { name: "text", "aria-label": "Text" }, f.text);
  const tags = h("input", { name: "tags", "aria-label": "Tags, comma-separated", value: f.tags.join(", ") });
  const meta = h("textarea", { name: "meta", "aria-label": "Metadata (JSON)" }, JSON.stringify(f.meta_data));
  const save = async () => {
    try {
      await api("PATCH", `/api/v1/facts/${f.id}`, {
        text: /** @type {HTMLTextAreaElement} */ (text).value,
        tags: splitTags(/** @type {HTMLInputElement} */ (tags).value),
        meta_data: parseJson(/** @type {HTMLTextAreaElement} */ (meta).value),
      });
      refresh();
    } catch (err) {
      message.replaceChildren(errorBox(err));
    }
  };
  return h("tr", { "data-fact": f.id, "data-editing": true },
    h("td", {}, text), h("td", {}, tags), h("td", {}, meta), h("td", {}),
    h("td", {}, h("button", { type: "button", class: "primary", onclick: save }, "Save"), " ",
      h("button", { type: "button", onclick: refresh }, "Discard"), message));
}

function createForm(refresh) {
  const message = h("div", {});
  const form = h("form", { class: "card", onsubmit: async (/** @type {Event} */ e) => {
    e.preventDefault();
    const el = /** @type {HTMLFormElement} */ (e.target);
    const data = new FormData(el);
    try {
      await api("POST", "/api/v1/facts", {
        text: data.get("text"), tags: splitTags(String(data.get("tags") ?? "")), meta_data: parseJson(String(data.get("meta") || "{}")),
      });
      el.reset();
      message.replaceChildren(h("p", { role: "status" }, "Fact stored."));
      refresh();
    } catch (err) {
      message.replaceChildren(errorBox(err));
    }
  } },
  h("label", { for: "c-text" }, "Text"), h("textarea", { id: "c-text", name: "text", required: true }),
  h("div", { class: "filters" },
    h("div", {}, h("label", { for: "c-tags" }, "Tags, comma-separated"), h("input", { id: "c-tags", name: "tags" })),
    h("div", {}, h("label", { for: "c-meta" }, "Metadata (JSON)"), h("input", { id: "c-meta", name: "meta", value: "{}" }))),
  h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Store fact")),
  message);
  return h("details", {}, h("summary", {}, "New fact"), form);
}

function splitTags(text) {
  return text.split(",").map((t) => t.trim()).filter(Boolean);
}

function parseJson(text) {
  try {
    return JSON.parse(text || "{}");
  } catch {
    throw new Error("Metadata must be a JSON object, e.g. {\"source\": \"book\"}");
  }
}
