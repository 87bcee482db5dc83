/**
 * Live tenant metrics on real Redis: two recorders (two processes) merge into one window,
 * percentiles come from the merged histograms, gauges of a dead process stop counting, and
 * one tenant's reads never see another's figures.
 */
import type { Clock } from "@lite/core";
import { createTestEnv, type TestEnv } from "@lite/testing";
import {
  GAUGE_STALE_MS,
  LiveMetricsRecorder,
  checkWindowSeconds,
  histogramOf,
  quantileMs,
  readLiveMetrics,
  type TenantGaugeReading,
} from "@lite/telemetry";

let env: TestEnv;
let now = Date.UTC(2026, 0, 1, 12, 0, 0);
const clock: Clock = { nowMs: () => now } as Clock;

beforeAll(async () => {
  env = await createTestEnv({ prefix: "live" });
});
afterAll(async () => {
  await env?.close();
});

function recorder(processId: string, gauges: TenantGaugeReading[] = []): LiveMetricsRecorder {
  const r = new LiveMetricsRecorder({ redis: env.redis, keys: env.keys, processId, clock });
  r.readGauges(() => gauges);
  return r;
}

const read = (tenantId: string, windowSeconds = 60) =>
  readLiveMetrics(env.redis, env.keys, tenantId, { windowSeconds, nowMs: now });

describe("live tenant metrics (Redis)", () => {
  it("sums two processes' counters and merges their histograms (p99 of the union, not an average)", async () => {
    const t = "ten_live_merge";
    const api = recorder("api-1");
    const w1 = recorder("worker-1");
    const w2 = recorder("worker-2");
    for (let i = 0; i < 3; i++) api.request(t);
    api.throttled(t);
    const fast = Array.from({ length: 90 }, () => 10);
    const slow = Array.from({ length: 10 }, () => 1000);
    for (const ms of fast) w1.ttftMs(t, ms);
    for (const ms of slow) w2.ttftMs(t, ms);
    w1.outputTokens(t, 40);
    w2.outputTokens(t, 2);
    w1.interTokenMs(t, 20, 5);
    await Promise.all([api.flush(), w1.flush(), w2.flush()]);
    const m = await read(t);
    expect(m).toMatchObject({ windowSeconds: 60, requests: 3, throttled: 1, outputTokens: 42n });
    const union = histogramOf([...fast, ...slow]);
    expect(m.ttftP50Ms).toBe(quantileMs(union, 0.5));
    expect(m.ttftP99Ms).toBe(quantileMs(union, 0.99));
    expect(m.ttftP99Ms!).toBeGreaterThan(750);
    expect(m.interTokenP50Ms!).toBeGreaterThan(15);
    expect(m.interTokenP50Ms!).toBeLessThanOrEqual(25);
    expect(m.expertHitRate).toBeNull();
  });

  it("slides: events older than the window stop counting", async () => {
    const t = "ten_live_slide";
    const r = recorder("api-1");
    r.request(t);
    await r.flush();
    now += 30_000;
    r.request(t);
    await r.flush();
    expect((await read(t, 60)).requests).toBe(2);
    expect((await read(t, 10)).requests).toBe(1);
    now += 65_000;
    expect((await read(t, 60)).requests).toBe(0);
  });

  it("sums byte gauges over live processes; a process silent past GAUGE_STALE_MS stops counting", async () => {
    const t = "ten_live_gauges";
    const g1 = {
      tenantId: t,
      hotBytes: 100,
      warmBytes: 300,
      kvBytes: 0,
      expertUses: 10,
      expertHits: 6,
      evictions: 1,
      prefetchBytes: 4096,
    };
    const g2 = { tenantId: t, hotBytes: 50, warmBytes: 50, kvBytes: 7 };
    const w1 = recorder("worker-1", [g1]);
    const w2 = recorder("worker-2", [g2]);
    await Promise.all([w1.flush(), w2.flush()]);
    let m = await read(t);
    expect(m).toMatchObject({ hotBytes: 150n, warmBytes: 350n, kvBytes: 7n, evictions: 1, prefetchBytes: 4096n });
    expect(m.expertHitRate).toBeCloseTo(0.6);
    // cumulative counters become increments: 10 more uses, 2 more hits
    g1.expertUses = 20;
    g1.expertHits = 8;
    g1.prefetchBytes = 5000;
    now += GAUGE_STALE_MS / 2;
    await w1.flush();
    m = await read(t);
    expect(m.expertHitRate).toBeCloseTo(8 / 20);
    expect(m.prefetchBytes).toBe(5000n);
    now += GAUGE_STALE_MS / 2 + 1; // worker-2 has not written since: stale
    await w1.flush();
    m = await read(t);
    expect(m).toMatchObject({ hotBytes: 100n, warmBytes: 300n, kvBytes: 0n });
    // a stopped recorder removes its gauges at once
    await w1.start().stop();
    expect((await read(t)).hotBytes).toBe(0n);
  });

  it("one tenant's figures never include another's", async () => {
    const a = "ten_live_a";
    const b = "ten_live_b";
    const r = recorder("worker-1", [{ tenantId: b, hotBytes: 999, warmBytes: 999, kvBytes: 0 }]);
    for (let i = 0; i < 50; i++) {
      r.request(b);
      r.outputTokens(b, 10);
      r.ttftMs(b, 5);
    }
    r.request(a);
    await r.flush();
    expect(await read(a)).toEqual({
      windowSeconds: 60,
      requests: 1,
      outputTokens: 0n,
      ttftP50Ms: null,
      ttftP99Ms: null,
      interTokenP50Ms: null,
      interTokenP99Ms: null,
      hotBytes: 0n,
      warmBytes: 0n,
      kvBytes: 0n,
      expertHitRate: null,
      prefetchBytes: 0n,
      throttled: 0,
      evictions: 0,
    });
    // every key written carries the tenant's hash tag
    const keys = await env.redis.keys(`${env.redisPrefix}:*live*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) expect(k).toMatch(/:\{t:ten_live_[a-z]+\}:live:/);
  });

  it("windowSeconds: 5..300 accepted, outside refused naming it", () => {
    expect(checkWindowSeconds(5).ok).toBe(true);
    expect(checkWindowSeconds(300).ok).toBe(true);
    for (const bad of [4, 301, 1.5]) {
      const r = checkWindowSeconds(bad);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.message).toMatch(/^windowSeconds: must be an integer from 5 to 300/);
    }
  });
});
