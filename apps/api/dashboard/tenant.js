// TENANT: its own completions (start one and stream it live), usage over time, quota use
// against its limits, its keys. Every query names the caller's own tenant (me.tenant.id);
// nothing here lists or names another tenant.
import { h, fill, table, section, fmt, when, meter, errorLine, bytes } from "./ui.js";
import { barChart, lineChart } from "./chart.js";

const OWN = `query Own($id: ID!) {
  tenant(id: $id) {
    id name weight suspended
    quota { maxConcurrentRequests maxOutstandingTokens requestsPerMinute tokensPerMinute
            hotMemoryBytes warmMemoryBytes kvCacheBytes overQuotaPolicy }
    queue { waiting active concurrentRequests outstandingTokens }
    apiKeys { id prefix role createdAt lastUsedAt revokedAt }
  }
}`;
const COMPLETIONS = `query Mine { completions(first: 20) { nodes {
  id status mode outputTokens promptTokens degraded finishReason createdAt } } }`;
const USAGE = `query Usage($id: ID!, $from: DateTime!, $to: DateTime!) {
  usage(tenantId: $id, from: $from, to: $to, granularity: HOUR) { start meter dimension quantity } }`;
const CREATE = `mutation Create($input: CompletionInput!) { createCompletion(input: $input) { id status tierSet degraded } }`;
const TOKENS = `subscription Tokens($id: ID!) { completionTokens(id: $id) { index text done finishReason } }`;
const METRICS = `subscription Live($id: ID!) { tenantMetrics(tenantId: $id, intervalMs: 1000, windowSeconds: 10) {
  windowSeconds requests outputTokens ttftP50Ms hotBytes warmBytes kvBytes throttled } }`;
const NEW_KEY = `mutation Key { createApiKey(role: TENANT) { secret apiKey { id prefix } } }`;
const REVOKE = `mutation Revoke($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }`;

export function tenantView(root, api, me) {
  const tenantId = me.tenant.id;
  const stops = [];
  let recent = [];
  let own;
  let lastMetrics;
  const rates = [];

  const quotaBox = h("div", { "data-testid": "quota" });
  const keysBox = h("div", { "data-testid": "keys" });
  const completionsBox = h("div", { "data-testid": "completions" });
  const usageBox = h("div", { "data-testid": "usage" });
  const liveBox = h("div", { "data-testid": "live" });
  const output = h("pre", { class: "stream", "data-testid": "stream-output", "aria-live": "polite" });
  const streamStatus = h("p", { class: "note", "data-testid": "stream-status" });
  const made = h("div", { "data-testid": "new-key" });

  const prompt = h("textarea", { name: "prompt", value: "Hello" });
  const maxTokens = h("input", { name: "maxTokens", type: "number", min: 1, value: "24" });
  const mode = h(
    "select",
    { name: "mode" },
    ["FAST", "BALANCED", "DEEP", "MAX"].map((m) => h("option", {}, m)),
  );
  const createForm = h(
    "form",
    {},
    h("label", {}, "Prompt", prompt),
    h("div", { class: "row" }, h("label", {}, "Max tokens", maxTokens), h("label", {}, "Mode", mode)),
    h("button", { type: "submit" }, "Run and stream"),
  );
  createForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const input = { prompt: prompt.value, maxTokens: Number(maxTokens.value), mode: mode.value };
      const c = (await api.gql(CREATE, { input })).createCompletion;
      stream(c.id);
      void loadCompletions();
    } catch (e) {
      fill(streamStatus, errorLine(e, "Could not start the completion"));
    }
  });

  const timers = new Set();
  const later = (fn, ms) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  stops.push(() => timers.forEach((t) => clearTimeout(t)));

  let stopStream = () => {};
  function stream(id) {
    stopStream();
    fill(output);
    fill(streamStatus, `Streaming ${id}…`);
    let text = "";
    stopStream = api.subscribe(
      TOKENS,
      { id },
      {
        next: (d) => {
          const t = d.completionTokens;
          if (t.done) {
            fill(
              streamStatus,
              h("span", { "data-testid": "stream-done" }, `${id}: done (${t.finishReason}, ${t.index} tokens)`),
            );
            void loadCompletions();
            void loadUsage();
            // The worker records usage as it ends the completion: read again shortly.
            later(() => void loadUsage(), 2000);
            return;
          }
          text += t.text;
          output.textContent = text;
        },
        error: (e) => fill(streamStatus, errorLine(e, "Stream")),
      },
    );
  }
  stops.push(() => stopStream());

  async function loadOwn() {
    try {
      own = (await api.gql(OWN, { id: tenantId })).tenant;
    } catch (e) {
      return fill(quotaBox, errorLine(e, "Quota"));
    }
    renderQuota();
    renderKeys();
  }

  function renderQuota() {
    if (!own) return;
    const q = own.quota;
    const u = own.queue;
    const since = Date.now() - 60000;
    const lastMinute = recent.filter((c) => Date.parse(c.createdAt) >= since);
    const tokensLastMinute = lastMinute.reduce((a, c) => a + c.outputTokens, 0);
    const m = lastMetrics;
    const rows = [
      ["Concurrent requests", u.concurrentRequests, q.maxConcurrentRequests, fmt],
      ["Outstanding tokens (cost-weighted)", u.outstandingTokens, q.maxOutstandingTokens, fmt],
      ["Requests in the last 60 s", lastMinute.length, q.requestsPerMinute, fmt],
      ["Output tokens in the last 60 s", tokensLastMinute, q.tokensPerMinute, fmt],
      ["HOT expert memory", m?.hotBytes, q.hotMemoryBytes, bytes],
      ["WARM expert memory", m?.warmBytes, q.warmMemoryBytes, bytes],
      ["KV cache", m?.kvBytes, q.kvCacheBytes, bytes],
    ];
    fill(
      quotaBox,
      h(
        "p",
        { class: "note" },
        `Weight ${own.weight} · queue: ${fmt(u.waiting)} waiting, ${fmt(u.active)} running · over quota: ${q.overQuotaPolicy}`,
        own.suspended ? h("strong", { class: "error" }, " · SUSPENDED") : null,
      ),
      table(
        [{ label: "" }, { label: "in use", num: true }, { label: "limit", num: true }, { label: "" }],
        rows.map(([label, used, limit, f]) => ({
          id: label,
          cells: [label, used === undefined ? "—" : f(used), f(limit), used === undefined ? "" : meter(used, limit)],
        })),
        { testid: "quota-table" },
      ),
    );
  }

  function renderKeys() {
    const list = table(
      ["Key", "Role", "Created", "Last used", ""],
      own.apiKeys.map((k) => ({
        id: k.id,
        cells: [
          h("code", {}, `${k.prefix}…`),
          k.role,
          when(k.createdAt),
          when(k.lastUsedAt),
          k.revokedAt
            ? `revoked ${when(k.revokedAt)}`
            : k.id === me.apiKeyId
              ? "this session"
              : h("button", { class: "plain", type: "button", onclick: () => revoke(k.id) }, "Revoke"),
        ],
      })),
    );
    const make = h(
      "button",
      {
        type: "button",
        onclick: async () => {
          try {
            const k = (await api.gql(NEW_KEY)).createApiKey;
            fill(made, h("p", {}, "New key (shown once):"), h("div", { class: "secret" }, k.secret));
            void loadOwn();
          } catch (e) {
            fill(made, errorLine(e, "Could not make a key"));
          }
        },
      },
      "Make a key",
    );
    fill(keysBox, list, h("div", { class: "row" }, make), made);
  }

  async function revoke(id) {
    try {
      await api.gql(REVOKE, { id });
    } catch (e) {
      fill(keysBox, errorLine(e, "Could not revoke"));
    }
    void loadOwn();
  }

  async function loadCompletions() {
    try {
      recent = (await api.gql(COMPLETIONS)).completions.nodes;
    } catch (e) {
      return fill(completionsBox, errorLine(e, "Completions"));
    }
    fill(
      completionsBox,
      table(
        ["Id", "Status", "Mode", { label: "Tokens", num: true }, "Created", ""],
        recent.map((c) => ({
          id: c.id,
          cells: [
            h("code", {}, c.id),
            c.status + (c.degraded ? " (degraded)" : ""),
            c.mode,
            fmt(c.outputTokens),
            when(c.createdAt),
            h("button", { class: "plain", type: "button", onclick: () => stream(c.id) }, "Stream"),
          ],
        })),
        { testid: "completions-table", empty: "No completions yet." },
      ),
    );
    renderQuota();
  }

  async function loadUsage() {
    const to = new Date((Math.floor(Date.now() / 3600000) + 1) * 3600000);
    const from = new Date(to.getTime() - 24 * 3600000);
    let buckets;
    try {
      buckets = (await api.gql(USAGE, { id: tenantId, from: from.toISOString(), to: to.toISOString() })).usage;
    } catch (e) {
      return fill(usageBox, errorLine(e, "Usage"));
    }
    const hours = [];
    for (let t = from.getTime(); t < to.getTime(); t += 3600000) hours.push(t);
    const out = new Map(hours.map((t) => [t, 0]));
    const totals = new Map();
    for (const b of buckets) {
      const key = b.meter + (b.dimension ? ` · ${b.dimension}` : "");
      totals.set(key, (totals.get(key) ?? 0) + Number(b.quantity));
      if (b.meter === "OUTPUT_TOKENS") {
        const t = Date.parse(b.start);
        out.set(t, (out.get(t) ?? 0) + Number(b.quantity));
      }
    }
    const bars = hours.map((t) => ({ label: new Date(t).toISOString().slice(11, 13) + "h", value: out.get(t) ?? 0 }));
    fill(
      usageBox,
      h("p", { class: "note" }, "Output tokens per hour, last 24 hours (UTC)"),
      h("div", { "data-testid": "usage-chart" }, barChart("output tokens per hour", bars)),
      table(
        ["Meter", { label: "Last 24 h", num: true }],
        [...totals].sort().map(([k, v]) => ({ id: k, cells: [k, fmt(v)] })),
        { testid: "usage-totals", empty: "No usage recorded yet." },
      ),
    );
  }

  function live() {
    fill(liveBox, h("p", { class: "note" }, "Waiting for live figures…"));
    const stop = api.subscribe(
      METRICS,
      { id: tenantId },
      {
        next: (d) => {
          const m = d.tenantMetrics;
          lastMetrics = m;
          rates.push(Number(m.outputTokens) / Math.max(1, m.windowSeconds));
          if (rates.length > 60) rates.shift();
          fill(
            liveBox,
            h(
              "p",
              { class: "note" },
              `Tokens/s over the last ${m.windowSeconds} s · requests ${m.requests} · throttled ${m.throttled}`,
            ),
            h("div", { "data-testid": "live-chart" }, lineChart("output tokens per second", rates)),
          );
          renderQuota();
        },
        error: (e) => fill(liveBox, errorLine(e, "Live metrics")),
      },
    );
    stops.push(stop);
  }

  fill(
    root,
    section("New completion", createForm, streamStatus, output),
    h("div", { class: "grid2" }, section("Quota use", quotaBox), section("Live", liveBox)),
    section("Usage", usageBox),
    section("Completions", completionsBox),
    section("API keys", keysBox),
  );
  void loadOwn();
  void loadCompletions();
  void loadUsage();
  live();
  const timer = setInterval(() => {
    void loadOwn();
  }, 3000);
  const usageTimer = setInterval(() => void loadUsage(), 15000);
  stops.push(
    () => clearInterval(timer),
    () => clearInterval(usageTimer),
  );
  return () => stops.forEach((s) => s());
}
