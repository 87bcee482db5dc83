// ADMIN: every tenant (create, edit weight and quota, suspend, grant tiers, make keys), live
// queue depth (Tenant.queue, polled) and tokens/s (tenantMetrics subscriptions), the audit
// log, and a link to bull-board (/admin/queues).
import { h, fill, table, section, fmt, when, errorLine } from "./ui.js";
import { lineChart } from "./chart.js";

const TENANTS = `query Tenants { tenants(first: 100) { totalCount nodes {
  id name weight suspended createdAt
  queue { waiting active concurrentRequests outstandingTokens } } } }`;
const TENANT = `query Tenant($id: ID!) { tenant(id: $id) {
  id name weight suspended
  quota { requestsPerMinute tokensPerMinute maxConcurrentRequests maxOutstandingTokens overQuotaPolicy }
  tiers { id name placement restricted }
  apiKeys { id prefix role createdAt lastUsedAt revokedAt } }
  tiers { id name placement restricted ownerTenantId } }`;
const CREATE = `mutation Create($input: CreateTenantInput!) {
  createTenant(input: $input) { tenant { id name } apiKey { secret } } }`;
const UPDATE = `mutation Update($id: ID!, $input: UpdateTenantInput!) { updateTenant(id: $id, input: $input) { id weight } }`;
const QUOTA = `mutation Quota($id: ID!, $input: QuotaInput!) { setQuota(tenantId: $id, input: $input) { id } }`;
const SUSPEND = `mutation Suspend($id: ID!, $s: Boolean!) { suspendTenant(id: $id, suspended: $s) { id suspended } }`;
const GRANT = `mutation Grant($id: ID!, $tier: ID!) { grantTier(tenantId: $id, tierId: $tier) { id } }`;
const REVOKE_TIER = `mutation RevokeTier($id: ID!, $tier: ID!) { revokeTier(tenantId: $id, tierId: $tier) { id } }`;
const KEY = `mutation Key($id: ID!) { createApiKey(tenantId: $id, role: TENANT) { secret apiKey { id prefix } } }`;
const AUDIT = `query Audit { auditLog(first: 50) { nodes { seq at tenantId actor action resource decision reason } } }`;
const RATES = `query Rates { tenants(first: 100) { nodes { id metrics(windowSeconds: 10) { windowSeconds outputTokens } } } }`;
const METRICS = `subscription Live($id: ID!) { tenantMetrics(tenantId: $id, intervalMs: 1000, windowSeconds: 10) {
  windowSeconds requests outputTokens ttftP50Ms throttled hotBytes kvBytes } }`;

export function adminView(root, api) {
  const stops = [];
  const tenantsBox = h("div", { "data-testid": "tenants" });
  const editBox = h("div", { "data-testid": "tenant-editor" }, h("p", { class: "note" }, "Choose a tenant to edit."));
  const createdBox = h("div", { "data-testid": "created-tenant" });
  const auditBox = h("div", { "data-testid": "audit" });
  const rate = new Map(); // tenant id → tokens/s over the last 10 s
  let liveError;
  let stopLive = () => {};
  let selected;
  let tenants = [];

  const name = h("input", { name: "name", required: true, placeholder: "name" });
  const weight = h("input", { name: "weight", type: "number", min: 1, max: 1000, value: "1" });
  const createForm = h(
    "form",
    { class: "inline" },
    h("label", {}, "Name", name),
    h("label", {}, "Weight", weight),
    h("button", { type: "submit" }, "Create tenant"),
  );
  createForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const input = { name: name.value.trim(), weight: Number(weight.value) };
      const r = (await api.gql(CREATE, { input })).createTenant;
      fill(
        createdBox,
        h("p", {}, `Created ${r.tenant.name} (${r.tenant.id}). Its first API key, shown once:`),
        h("div", { class: "secret", "data-testid": "created-secret" }, r.apiKey.secret),
      );
      name.value = "";
      await loadTenants();
    } catch (e) {
      fill(createdBox, errorLine(e, "Could not create the tenant"));
    }
  });

  /**
   * Tokens/s of every listed tenant in one query (Tenant.metrics over 10 s), polled with the
   * queue figures: one subscription per tenant would not scale (the API allows a few per
   * WebSocket). The tenant being edited gets a live subscription of its own (liveFor).
   */
  async function loadRates() {
    try {
      const nodes = (await api.gql(RATES)).tenants.nodes;
      for (const n of nodes) rate.set(n.id, Number(n.metrics.outputTokens) / Math.max(1, n.metrics.windowSeconds));
      liveError = undefined;
    } catch (e) {
      liveError = e;
    }
  }

  const liveBox = h("div", { "data-testid": "tenant-live" });
  const samples = [];
  let liveId;
  /** The edited tenant's live figures (tenantMetrics), one subscription at a time. */
  function liveFor(id) {
    if (liveId === id) return;
    stopLive();
    liveId = id;
    samples.length = 0;
    fill(liveBox, h("p", { class: "note" }, "Waiting for live figures…"));
    stopLive = api.subscribe(
      METRICS,
      { id },
      {
        next: (d) => {
          const m = d.tenantMetrics;
          samples.push(Number(m.outputTokens) / Math.max(1, m.windowSeconds));
          if (samples.length > 60) samples.shift();
          const ttft = m.ttftP50Ms === null ? "—" : `${fmt(m.ttftP50Ms)} ms`;
          fill(
            liveBox,
            h(
              "p",
              { class: "note" },
              `Live: ${fmt(samples.at(-1), 1)} tokens/s over ${m.windowSeconds} s · requests ${m.requests}` +
                ` · throttled ${m.throttled} · TTFT p50 ${ttft}`,
            ),
            h("div", { "data-testid": "tenant-live-chart" }, lineChart("output tokens per second", samples)),
          );
        },
        error: (e) => fill(liveBox, errorLine(e, "Live metrics")),
      },
    );
  }
  stops.push(() => stopLive());

  async function loadTenants() {
    try {
      tenants = (await api.gql(TENANTS)).tenants.nodes;
    } catch (e) {
      return fill(tenantsBox, errorLine(e, "Tenants"));
    }
    await loadRates();
    renderTenants();
  }

  function renderTenants() {
    const tps = (id) => (liveError ? "—" : rate.has(id) ? fmt(rate.get(id), 1) : "…");
    fill(
      tenantsBox,
      table(
        [
          "Tenant",
          "Id",
          { label: "Weight", num: true },
          "State",
          { label: "Waiting", num: true },
          { label: "Running", num: true },
          { label: "In flight", num: true },
          { label: "Tokens/s", num: true },
          "",
        ],
        tenants.map((t) => ({
          id: t.id,
          selected: t.id === selected,
          cells: [
            t.name,
            h("code", {}, t.id),
            fmt(t.weight),
            t.suspended ? h("span", { class: "error" }, "suspended") : "active",
            fmt(t.queue.waiting),
            fmt(t.queue.active),
            fmt(t.queue.concurrentRequests),
            tps(t.id),
            h("button", { class: "plain", type: "button", onclick: () => edit(t.id) }, "Edit"),
          ],
        })),
        { testid: "tenants-table", empty: "No tenants yet." },
      ),
      liveError ? errorLine(liveError, "Live tokens/s (tenantMetrics)") : null,
    );
  }

  async function edit(id) {
    selected = id;
    renderTenants();
    let d;
    try {
      d = await api.gql(TENANT, { id });
    } catch (e) {
      return fill(editBox, errorLine(e, "Tenant"));
    }
    const t = d.tenant;
    liveFor(id);
    const msg = h("p", { "data-testid": "editor-message" });
    // The editor is drawn again from the server's answer before "saved" shows.
    const act = (what, fn) => async (ev) => {
      ev?.preventDefault?.();
      try {
        await fn();
      } catch (e) {
        return fill(msg, errorLine(e, what));
      }
      await loadTenants();
      await edit(id);
      editBox.querySelector('[data-testid="editor-message"]').textContent = `${what}: saved.`;
    };
    const w = h("input", { name: "weight", type: "number", min: 1, max: 1000, value: String(t.weight) });
    const weightForm = h("form", { class: "inline" }, h("label", {}, "Weight", w), h("button", {}, "Save weight"));
    weightForm.addEventListener(
      "submit",
      act("Weight", () => api.gql(UPDATE, { id, input: { weight: Number(w.value) } })),
    );
    const q = t.quota;
    const fields = ["requestsPerMinute", "tokensPerMinute", "maxConcurrentRequests", "maxOutstandingTokens"];
    const inputs = Object.fromEntries(
      fields.map((f) => [f, h("input", { name: f, type: "number", min: 1, value: String(q[f]) })]),
    );
    const policy = h(
      "select",
      { name: "overQuotaPolicy" },
      ["REJECT", "DEGRADE"].map((p) => h("option", { selected: p === q.overQuotaPolicy }, p)),
    );
    const quotaForm = h(
      "form",
      { class: "inline" },
      fields.map((f) => h("label", {}, f, inputs[f])),
      h("label", {}, "overQuotaPolicy", policy),
      h("button", {}, "Save quota"),
    );
    quotaForm.addEventListener(
      "submit",
      act("Quota", () => {
        const input = Object.fromEntries(fields.map((f) => [f, Number(inputs[f].value)]));
        return api.gql(QUOTA, { id, input: { ...input, overQuotaPolicy: policy.value } });
      }),
    );
    const granted = new Set(t.tiers.map((x) => x.id));
    const grantable = d.tiers.filter((x) => !granted.has(x.id) && (!x.ownerTenantId || x.ownerTenantId === id));
    const tierSelect = h(
      "select",
      { name: "tier" },
      grantable.map((x) =>
        h("option", { value: x.id }, `${x.name} (${x.placement}${x.restricted ? ", restricted" : ""})`),
      ),
    );
    const secretBox = h("div", { "data-testid": "tenant-key" });
    fill(
      editBox,
      h("h3", {}, `${t.name} `, h("code", {}, t.id)),
      msg,
      liveBox,
      weightForm,
      quotaForm,
      h(
        "div",
        { class: "row" },
        h(
          "button",
          {
            type: "button",
            onclick: act(t.suspended ? "Resume" : "Suspend", () => api.gql(SUSPEND, { id, s: !t.suspended })),
          },
          t.suspended ? "Resume tenant" : "Suspend tenant",
        ),
        h(
          "button",
          {
            type: "button",
            onclick: async () => {
              try {
                const k = (await api.gql(KEY, { id })).createApiKey;
                fill(secretBox, h("p", {}, "New TENANT key (shown once):"), h("div", { class: "secret" }, k.secret));
              } catch (e) {
                fill(secretBox, errorLine(e, "Could not make a key"));
              }
            },
          },
          "Make a TENANT key",
        ),
      ),
      secretBox,
      h("h4", {}, "Tiers"),
      table(
        ["Tier", "Placement", ""],
        t.tiers.map((x) => ({
          id: x.id,
          cells: [
            `${x.name}${x.restricted ? " (restricted)" : ""}`,
            x.placement,
            h(
              "button",
              {
                class: "plain",
                type: "button",
                onclick: act("Revoke tier", () => api.gql(REVOKE_TIER, { id, tier: x.id })),
              },
              "Revoke",
            ),
          ],
        })),
        { testid: "granted-tiers", empty: "No tiers granted." },
      ),
      grantable.length
        ? h(
            "div",
            { class: "row" },
            tierSelect,
            h(
              "button",
              { type: "button", onclick: act("Grant tier", () => api.gql(GRANT, { id, tier: tierSelect.value })) },
              "Grant tier",
            ),
          )
        : h("p", { class: "note" }, "Every tier is granted."),
      h("h4", {}, "API keys"),
      table(
        ["Key", "Role", "Created", "Last used", "Revoked"],
        t.apiKeys.map((k) => ({
          id: k.id,
          cells: [h("code", {}, `${k.prefix}…`), k.role, when(k.createdAt), when(k.lastUsedAt), when(k.revokedAt)],
        })),
      ),
    );
  }

  async function loadAudit() {
    try {
      const nodes = (await api.gql(AUDIT)).auditLog.nodes;
      fill(
        auditBox,
        table(
          [{ label: "#", num: true }, "At", "Tenant", "Actor", "Action", "Resource", "Decision", "Reason"],
          nodes.map((e) => ({
            id: e.seq,
            cells: [e.seq, when(e.at), e.tenantId ?? "—", e.actor, e.action, e.resource, e.decision, e.reason ?? ""],
          })),
          { testid: "audit-table", empty: "The audit log is empty." },
        ),
      );
    } catch (e) {
      fill(auditBox, errorLine(e, "Audit log"));
    }
  }

  fill(
    root,
    section(
      "Tenants",
      createForm,
      createdBox,
      tenantsBox,
      h(
        "p",
        { class: "note" },
        "Queues in detail: ",
        h("a", { href: "/admin/queues", target: "_blank", rel: "noopener" }, "bull-board at /admin/queues"),
        " (your browser asks for credentials: any user name, the ADMIN key as the password).",
      ),
    ),
    section("Edit tenant", editBox),
    section(
      "Audit log",
      h("button", { class: "plain", type: "button", onclick: () => loadAudit() }, "Refresh"),
      auditBox,
    ),
  );
  void loadTenants();
  void loadAudit();
  const timer = setInterval(() => void loadTenants(), 2000);
  const auditTimer = setInterval(() => void loadAudit(), 10000);
  stops.push(
    () => clearInterval(timer),
    () => clearInterval(auditTimer),
  );
  return () => stops.forEach((s) => s());
}
