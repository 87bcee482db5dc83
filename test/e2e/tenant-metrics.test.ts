/**
 * Live tenant metrics end to end: a real worker process and the in-process API publish into
 * Redis, Tenant.metrics and the tenantMetrics subscription read them back. Two tenants under
 * load stay separate and match the tokens each received; another tenant's metrics are
 * NOT_FOUND; the subscription's interval and per-connection limits hold at their bounds;
 * the worker's /metrics (on by default) answers only an ADMIN key.
 */
import {
  collectTokens,
  CREATE_COMPLETION,
  TEST_ADMIN_KEY,
  waitFor,
  wsClient,
  wsConnect,
  type StackTenant,
} from "@lite/testing";
import type { Client } from "graphql-ws";
import { newId } from "@lite/core";
import { startE2eStack, type TestStack } from "../support/stack";

const METRICS = `query($id: ID!, $w: Int) { tenant(id: $id) { metrics(windowSeconds: $w) {
  windowSeconds requests outputTokens ttftP50Ms ttftP99Ms interTokenP50Ms interTokenP99Ms
  hotBytes warmBytes kvBytes expertHitRate prefetchBytes throttled evictions } } }`;

interface Metrics {
  windowSeconds: number;
  requests: number;
  outputTokens: string;
  ttftP50Ms: number | null;
  ttftP99Ms: number | null;
  interTokenP50Ms: number | null;
  interTokenP99Ms: number | null;
  hotBytes: string;
  warmBytes: string;
  kvBytes: string;
  expertHitRate: number | null;
  prefetchBytes: string;
  throttled: number;
  evictions: number;
}

let stack: TestStack;
let metricsUrl: string;

beforeAll(async () => {
  stack = await startE2eStack({ workers: 1 });
  metricsUrl = `http://127.0.0.1:${/"metricsPort":(\d+)/.exec(stack.workers[0].output())?.[1]}/metrics`;
}, 90000);
afterAll(async () => {
  await stack?.close();
});

async function metricsOf(t: StackTenant, tenantId = t.tenantId, windowSeconds?: number) {
  return t.http.request<{ tenant: { metrics: Metrics } | null }>(METRICS, { id: tenantId, w: windowSeconds });
}

/** Runs `n` completions for the tenant and returns the tokens its client received. */
async function run(t: StackTenant, n: number, maxTokens: number): Promise<number> {
  const ws = wsClient(stack.api.url, t.secret);
  try {
    const ids = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const r = await t.http.ok<{ createCompletion: { id: string } }>(CREATE_COMPLETION, {
          input: { prompt: `metrics ${i}`, maxTokens, mode: "FAST", seed: String(i) },
        });
        return r.createCompletion.id;
      }),
    );
    const streams = await Promise.all(ids.map((id) => collectTokens(ws, id)));
    return streams.reduce((sum, events) => sum + events.filter((e) => !e.done).length, 0);
  } finally {
    await ws.dispose();
  }
}

/** First answer of a subscription: data, or the first error's code. */
function firstOf(client: Client, query: string, variables: Record<string, unknown>) {
  return new Promise<{ code?: string; message?: string; data?: unknown; dispose(): void }>((resolve) => {
    const dispose = client.subscribe(
      { query, variables },
      {
        next: (msg) =>
          resolve(
            msg.errors?.length
              ? { code: msg.errors[0].extensions?.code as string, message: msg.errors[0].message, dispose }
              : { data: msg.data, dispose },
          ),
        error: (err) => {
          const e = Array.isArray(err) ? err[0] : undefined;
          resolve({ code: e?.extensions?.code as string, message: e?.message, dispose });
        },
        complete: () => undefined,
      },
    );
  });
}

const SUB = "subscription($t: ID!, $i: Int) { tenantMetrics(tenantId: $t, intervalMs: $i) { requests outputTokens } }";

describe("live tenant metrics", () => {
  it("two tenants under load stay separate and match the tokens each received", async () => {
    const a = await stack.tenant();
    const b = await stack.tenant();
    const [tokensA, tokensB] = await Promise.all([run(a, 3, 12), run(b, 1, 5)]);
    expect(tokensA).toBeGreaterThan(0);
    // Two processes flush these figures, each at its own interval: the worker its tokens,
    // the API its admitted requests. A worker that starts jobs at once can have flushed every
    // token before the API flushed its last admission (seen in a full CI run: requests 2 of
    // 3), so the wait is for both.
    const seen = await waitFor(
      "both tenants' figures flushed",
      async () => {
        const [ma, mb] = await Promise.all([metricsOf(a), metricsOf(b)]);
        const x = ma.data?.tenant?.metrics;
        const y = mb.data?.tenant?.metrics;
        const flushed = (m: typeof x, tokens: number, requests: number) =>
          m && Number(m.outputTokens) === tokens && m.requests >= requests;
        return flushed(x, tokensA, 3) && flushed(y, tokensB, 1) ? { x: x!, y: y! } : undefined;
      },
      { timeoutMs: 15000, everyMs: 200 },
    );
    expect(seen.x).toMatchObject({ windowSeconds: 60, requests: 3, throttled: 0 });
    expect(seen.y).toMatchObject({ windowSeconds: 60, requests: 1, throttled: 0 });
    for (const m of [seen.x, seen.y]) {
      expect(m.ttftP50Ms).toBeGreaterThan(0);
      expect(m.ttftP99Ms!).toBeGreaterThanOrEqual(m.ttftP50Ms!);
      expect(m.expertHitRate).not.toBeNull();
      expect(m.expertHitRate!).toBeGreaterThanOrEqual(0);
      expect(m.expertHitRate!).toBeLessThanOrEqual(1);
      expect(BigInt(m.warmBytes)).toBeGreaterThanOrEqual(BigInt(m.hotBytes));
      expect(BigInt(m.prefetchBytes)).toBeGreaterThanOrEqual(0n);
      expect(BigInt(m.kvBytes)).toBeGreaterThanOrEqual(0n);
    }
    expect(seen.x.interTokenP50Ms).toBeGreaterThan(0);
    expect(BigInt(seen.x.hotBytes)).toBeGreaterThan(0n);

    // B's figures do not move while A keeps working: nothing of A's activity reaches them.
    // (over the longest window, so nothing of B's slides out on a slow machine)
    const before = (await metricsOf(b, b.tenantId, 300)).data!.tenant!.metrics;
    const more = await run(a, 2, 8);
    await waitFor("A's new tokens flushed", async () => {
      const m = (await metricsOf(a)).data?.tenant?.metrics;
      return m && Number(m.outputTokens) === tokensA + more ? m : undefined;
    });
    const after = (await metricsOf(b, b.tenantId, 300)).data!.tenant!.metrics;
    // every sequence of A has ended: the KV bytes its sequences held are released
    await waitFor("A's KV bytes released", async () => (await metricsOf(a)).data?.tenant?.metrics.kvBytes === "0");
    expect({ ...after, hotBytes: 0, warmBytes: 0, expertHitRate: 0, evictions: 0 }).toEqual({
      ...before,
      hotBytes: 0,
      warmBytes: 0,
      expertHitRate: 0,
      evictions: 0,
    });
    expect(after.expertHitRate).toBe(before.expertHitRate);

    // An ADMIN reads either tenant.
    const admin = await stack.admin.ok<{ tenant: { metrics: Metrics } }>(METRICS, { id: b.tenantId });
    expect(admin.tenant.metrics.requests).toBe(1);
  });

  it("counts a tenant's admission refusals as throttled", async () => {
    const t = await stack.tenant({ quota: { requestsPerMinute: 1 } });
    await run(t, 1, 2);
    const refused = await t.http.request(CREATE_COMPLETION, { input: { prompt: "again", maxTokens: 2, mode: "FAST" } });
    expect(refused.errors?.[0]?.extensions?.code).toBe("RATE_LIMITED");
    const m = await waitFor("throttled flushed", async () => {
      const x = (await metricsOf(t)).data?.tenant?.metrics;
      return x && x.throttled === 1 ? x : undefined;
    });
    expect(m.requests).toBe(1);
  });

  it("another tenant's metrics are NOT_FOUND, exactly like a missing tenant's; a bad window names windowSeconds", async () => {
    const a = await stack.tenant();
    const b = await stack.tenant();
    const other = await metricsOf(a, b.tenantId);
    const missing = await metricsOf(a, newId("tenant"));
    expect(other.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    expect(other.data).toEqual(missing.data);
    expect(other.errors?.[0]?.extensions?.code).toBe(missing.errors?.[0]?.extensions?.code);
    for (const w of [4, 301]) {
      const r = await metricsOf(a, a.tenantId, w);
      expect(r.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
      expect(r.errors?.[0]?.message).toMatch(/windowSeconds/);
    }
    for (const w of [5, 300]) expect((await metricsOf(a, a.tenantId, w)).data?.tenant?.metrics.windowSeconds).toBe(w);
  });

  it("tenantMetrics pushes a snapshot every interval, from the minimum interval (500 ms) up", async () => {
    const t = await stack.tenant();
    const other = await stack.tenant();
    const client = wsClient(stack.api.url, t.secret);
    try {
      const tooFast = await firstOf(client, SUB, { t: t.tenantId, i: 499 });
      expect(tooFast.code).toBe("BAD_USER_INPUT");
      expect(tooFast.message).toMatch(/intervalMs/);
      const tooSlow = await firstOf(client, SUB, { t: t.tenantId, i: 60001 });
      expect(tooSlow.code).toBe("BAD_USER_INPUT");
      expect((await firstOf(client, SUB, { t: other.tenantId, i: 500 })).code).toBe("NOT_FOUND");

      const at: number[] = [];
      await new Promise<void>((resolve, reject) => {
        const dispose = client.subscribe(
          { query: SUB, variables: { t: t.tenantId, i: 500 } },
          {
            next: (msg) => {
              if (msg.errors) return reject(new Error(JSON.stringify(msg.errors)));
              at.push(Date.now());
              if (at.length === 3) {
                dispose();
                resolve();
              }
            },
            error: reject,
            complete: () => undefined,
          },
        );
      });
      expect(at[1] - at[0]).toBeGreaterThanOrEqual(450);
      expect(at[2] - at[1]).toBeGreaterThanOrEqual(450);
    } finally {
      await client.dispose();
    }
  });

  it("at most 4 tenantMetrics subscriptions on one WebSocket; a slot frees when one ends", async () => {
    const t = await stack.tenant();
    const conn = await wsConnect(stack.api.wsUrl, { authorization: `Bearer ${t.secret}` });
    if (conn.outcome !== "open") throw new Error(`closed ${conn.code}`);
    try {
      const live = [];
      for (let i = 0; i < 4; i++) {
        const s = await firstOf(conn.client, SUB, { t: t.tenantId, i: 1000 });
        expect(s.data).toBeDefined();
        live.push(s);
      }
      const fifth = await firstOf(conn.client, SUB, { t: t.tenantId, i: 1000 });
      expect(fifth.code).toBe("QUOTA_EXCEEDED");
      expect(fifth.message).toMatch(/at most 4 tenantMetrics subscriptions/);
      // another connection has its own 4
      const second = await wsConnect(stack.api.wsUrl, { authorization: `Bearer ${t.secret}` });
      if (second.outcome !== "open") throw new Error(`closed ${second.code}`);
      expect((await firstOf(second.client, SUB, { t: t.tenantId, i: 1000 })).data).toBeDefined();
      await second.client.dispose();
      live[0].dispose();
      const again = await waitFor("a slot is free again", async () => {
        const s = await firstOf(conn.client, SUB, { t: t.tenantId, i: 1000 });
        if (s.data) return s;
        s.dispose();
        return undefined;
      });
      expect(again.data).toBeDefined();
    } finally {
      await conn.client.dispose();
    }
  });

  it("the worker's /metrics answers an ADMIN key only", async () => {
    const t = await stack.tenant();
    expect((await fetch(metricsUrl)).status).toBe(401);
    expect((await fetch(metricsUrl, { headers: { authorization: `Bearer ${t.secret}` } })).status).toBe(403);
    expect((await fetch(metricsUrl, { headers: { authorization: "Bearer not-a-key-0123456789" } })).status).toBe(401);
    const ok = await fetch(metricsUrl, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
    expect(ok.status).toBe(200);
    const text = await ok.text();
    expect(text).toMatch(/^lite_tokens_generated_total\{tenant="ten_/m);
    expect(text).toMatch(/^lite_inter_token_seconds_bucket\{/m);
  });
});
