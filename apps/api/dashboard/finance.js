// FINANCE: invoices and usage per period (a month, UTC). Reads tenants (names), invoices,
// invoice and usage: the fields the contract lets FINANCE read, nothing else.
import { h, fill, table, section, fmt, errorLine, monthOf } from "./ui.js";
import { barChart } from "./chart.js";

const TENANTS = `query Tenants { tenants(first: 500) { nodes { id name } } }`;
const INVOICES = `query Invoices($period: String!) { invoices(period: $period) {
  tenantId tenantName period currency total } }`;
const INVOICE = `query Invoice($id: ID!, $period: String!) { invoice(tenantId: $id, period: $period) {
  tenantId tenantName period currency total lines { meter dimension quantity unitPrice amount } } }`;
const USAGE = `query Usage($id: ID!, $from: DateTime!, $to: DateTime!) {
  usage(tenantId: $id, from: $from, to: $to, granularity: DAY) { start meter dimension quantity } }`;

function periodRange(period) {
  const [y, m] = period.split("-").map(Number);
  return { from: new Date(Date.UTC(y, m - 1, 1)), to: new Date(Date.UTC(y, m, 1)) };
}

export function financeView(root, api) {
  const period = h("input", { name: "period", type: "month", value: monthOf(new Date()) });
  const tenantSelect = h("select", { name: "tenant" });
  const invoicesBox = h("div", { "data-testid": "invoices" });
  const linesBox = h("div", { "data-testid": "invoice-lines" });
  const usageBox = h("div", { "data-testid": "usage" });
  const periodForm = h(
    "form",
    { class: "inline" },
    h("label", {}, "Period (YYYY-MM, UTC)", period),
    h("button", {}, "Show"),
  );
  periodForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void loadInvoices();
    void loadUsage();
  });
  tenantSelect.addEventListener("change", () => void loadUsage());

  async function loadTenants() {
    try {
      const nodes = (await api.gql(TENANTS)).tenants.nodes;
      fill(
        tenantSelect,
        nodes.map((t) => h("option", { value: t.id }, `${t.name} (${t.id})`)),
      );
    } catch (e) {
      fill(usageBox, errorLine(e, "Tenants"));
    }
  }

  async function loadInvoices() {
    fill(linesBox);
    let list;
    try {
      list = (await api.gql(INVOICES, { period: period.value })).invoices;
    } catch (e) {
      return fill(invoicesBox, errorLine(e, "Invoices"));
    }
    const sums = new Map();
    for (const i of list) sums.set(i.currency, (sums.get(i.currency) ?? 0) + Number(i.total));
    fill(
      invoicesBox,
      table(
        ["Tenant", "Id", "Currency", { label: "Total", num: true }, ""],
        list.map((i) => ({
          id: i.tenantId,
          cells: [
            i.tenantName,
            h("code", {}, i.tenantId),
            i.currency,
            i.total,
            h("button", { class: "plain", type: "button", onclick: () => lines(i.tenantId) }, "Lines"),
          ],
        })),
        { testid: "invoices-table", empty: "No invoices for this period." },
      ),
      h("p", { class: "note" }, [...sums].map(([c, v]) => `Total ${fmt(v, 6)} ${c}`).join(" · ")),
    );
  }

  async function lines(id) {
    try {
      const i = (await api.gql(INVOICE, { id, period: period.value })).invoice;
      fill(
        linesBox,
        h("h3", {}, `${i.tenantName} · ${i.period} · ${i.total} ${i.currency}`),
        table(
          [
            "Meter",
            "Dimension",
            { label: "Quantity", num: true },
            { label: "Unit price", num: true },
            { label: "Amount", num: true },
          ],
          i.lines.map((l, n) => ({
            id: n,
            cells: [l.meter, l.dimension ?? "", fmt(l.quantity), l.unitPrice, l.amount],
          })),
          { empty: "No lines." },
        ),
      );
    } catch (e) {
      fill(linesBox, errorLine(e, "Invoice"));
    }
  }

  async function loadUsage() {
    const id = tenantSelect.value;
    if (!id) return fill(usageBox, h("p", { class: "note" }, "No tenants yet."));
    const { from, to } = periodRange(period.value);
    let buckets;
    try {
      buckets = (await api.gql(USAGE, { id, from: from.toISOString(), to: to.toISOString() })).usage;
    } catch (e) {
      return fill(usageBox, errorLine(e, "Usage"));
    }
    const days = [];
    for (let t = from.getTime(); t < to.getTime(); t += 86400000) days.push(t);
    const out = new Map(days.map((t) => [t, 0]));
    const totals = new Map();
    for (const b of buckets) {
      const key = b.meter + (b.dimension ? ` · ${b.dimension}` : "");
      totals.set(key, (totals.get(key) ?? 0) + Number(b.quantity));
      if (b.meter === "OUTPUT_TOKENS")
        out.set(Date.parse(b.start), (out.get(Date.parse(b.start)) ?? 0) + Number(b.quantity));
    }
    fill(
      usageBox,
      h("p", { class: "note" }, "Output tokens per day"),
      h(
        "div",
        { "data-testid": "usage-chart" },
        barChart(
          "output tokens per day",
          days.map((t) => ({ label: new Date(t).toISOString().slice(8, 10), value: out.get(t) ?? 0 })),
        ),
      ),
      table(
        ["Meter", { label: "Period total", num: true }],
        [...totals].sort().map(([k, v]) => ({ id: k, cells: [k, fmt(v)] })),
        { testid: "usage-totals", empty: "No usage in this period." },
      ),
    );
  }

  fill(
    root,
    section("Period", periodForm),
    section("Invoices", invoicesBox, linesBox),
    section("Usage by tenant", h("div", { class: "row" }, h("label", {}, "Tenant", tenantSelect)), usageBox),
  );
  void loadInvoices();
  void loadTenants().then(() => loadUsage());
  return () => {};
}
