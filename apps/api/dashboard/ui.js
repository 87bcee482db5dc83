// Small DOM helpers: every text goes through textContent, never innerHTML, so nothing a
// tenant typed (names, prompts, completion text) can become markup.

/** h("td", { class: "num" }, "12") → element; children are nodes, strings or arrays of them. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table from column headers and rows of cells (a cell: node, string, or { num: value }). */
export function table(columns, rows, opts = {}) {
  const head = h(
    "tr",
    {},
    columns.map((c) => h("th", { class: c.num ? "num" : undefined }, c.label ?? c)),
  );
  const body = rows.map((r) =>
    h(
      "tr",
      { "data-id": r.id, class: r.selected ? "selected" : undefined },
      r.cells.map((cell, i) => h("td", { class: columns[i]?.num ? "num" : undefined }, cell)),
    ),
  );
  if (rows.length === 0)
    body.push(h("tr", {}, h("td", { colspan: columns.length, class: "note" }, opts.empty ?? "none")));
  return h("table", { "data-testid": opts.testid }, h("thead", {}, head), h("tbody", {}, body));
}

export function section(title, ...children) {
  return h("section", { "aria-label": title }, h("h2", {}, title), ...children);
}

/** A number with thousands separators; BigInt and Decimal arrive as strings. */
export function fmt(n, digits = 0) {
  if (n === null || n === undefined || n === "") return "—";
  const x = Number(n);
  if (!Number.isFinite(x)) return String(n);
  return x.toLocaleString("en-US", { maximumFractionDigits: digits });
}

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const x = Number(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = x;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${fmt(v, 1)} ${units[i]}`;
}

export function when(iso) {
  if (!iso) return "—";
  return new Date(iso).toISOString().replace("T", " ").slice(0, 19);
}

/** A bar showing use against a limit. */
export function meter(used, limit) {
  const pct = limit > 0 ? Math.min(100, (100 * Number(used)) / Number(limit)) : 0;
  const bar = h("div");
  bar.style.width = `${pct}%`;
  return h("div", { class: "meter", title: `${fmt(used, 1)} of ${fmt(limit)}` }, bar);
}

/** A line for an error; NOT_IMPLEMENTED reads as "not available yet". */
export function errorLine(e, what) {
  if (e?.code === "NOT_IMPLEMENTED") {
    return h("p", { class: "note", "data-testid": "not-implemented" }, `${what} is not available on this server yet.`);
  }
  return h("p", { class: "error", role: "alert" }, `${what}: ${e?.message ?? e}`);
}

/** The month of a date as YYYY-MM (UTC). */
export function monthOf(d) {
  return d.toISOString().slice(0, 7);
}
