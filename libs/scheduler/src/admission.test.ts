import fc from "fast-check";
import { ManualClock } from "@lite/core";
import { createRedis, RedisKeys, type Redis } from "@lite/redis";
import { createTestEnv, type TestEnv } from "@lite/testing";
import { Admission, type TenantLimits } from "./admission";

const BIG: TenantLimits = {
  requestsPerMinute: 1e6,
  tokensPerMinute: 1e9,
  maxConcurrentRequests: 1e6,
  maxOutstandingTokens: 1e9,
};

let env: TestEnv;
let n = 0;
const tenant = () => `ten_adm${++n}`;
const cmp = () => `cmp_${++n}`;

beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env.close();
});

function make(extra: Partial<ConstructorParameters<typeof Admission>[0]> = {}) {
  const clock = new ManualClock(1_700_000_000_000);
  const adm = new Admission({ redis: env.redis, keys: env.keys, maxQueuedTokens: 1e9, clock, ...extra });
  return { adm, clock };
}

describe("Admission limits, each exactly at and over the limit", () => {
  test("requestsPerMinute: N admitted, N+1 RATE_LIMITED with the exact refill time", async () => {
    const { adm, clock } = make();
    const t = tenant();
    const limits = { ...BIG, requestsPerMinute: 5 };
    for (let i = 0; i < 5; i++)
      expect((await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 1, costWeight: 1, limits })).ok).toBe(
        true,
      );
    const r = await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 1, costWeight: 1, limits });
    expect(r).toEqual({ ok: false, error: { code: "RATE_LIMITED", limit: "requestsPerMinute", retryAfterMs: 12000 } });
    clock.advance(11999);
    expect((await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 1, costWeight: 1, limits })).ok).toBe(false);
    clock.advance(1);
    expect((await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 1, costWeight: 1, limits })).ok).toBe(true);
  });

  test("tokensPerMinute counts maxTokens × costWeight; refusal gives the time to refill the missing tokens", async () => {
    const { adm, clock } = make();
    const t = tenant();
    const limits = { ...BIG, tokensPerMinute: 100 };
    // 4 tokens × 2.5 = 10 cost-weighted tokens each: exactly 10 fit
    for (let i = 0; i < 10; i++) {
      const r = await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 4, costWeight: 2.5, limits });
      expect(r).toEqual({ ok: true, value: { reservedTokens: 10 } });
    }
    const r = await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 4, costWeight: 2.5, limits });
    expect(r).toEqual({ ok: false, error: { code: "RATE_LIMITED", limit: "tokensPerMinute", retryAfterMs: 6000 } });
    // a smaller TierSet (cost 1 → 4 tokens) still does not fit: 2400 ms
    const smaller = await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 4, costWeight: 1, limits });
    expect(smaller).toEqual({
      ok: false,
      error: { code: "RATE_LIMITED", limit: "tokensPerMinute", retryAfterMs: 2400 },
    });
    clock.advance(2400);
    expect((await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 4, costWeight: 1, limits })).ok).toBe(true);
  });

  test("tokensPerMinute is settled with the actual count", async () => {
    const { adm } = make();
    const t = tenant();
    const limits = { ...BIG, tokensPerMinute: 100 };
    const a = cmp();
    expect((await adm.admit({ tenantId: t, completionId: a, maxTokens: 50, costWeight: 2, limits })).ok).toBe(true);
    expect((await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 1, costWeight: 1, limits })).ok).toBe(false);
    await adm.settle(t, a, 10); // used 20 of 100 reserved → 80 back
    expect((await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 80, costWeight: 1, limits })).ok).toBe(true);
    expect((await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 1, costWeight: 1, limits })).ok).toBe(false);
  });

  test("maxConcurrentRequests: N admitted, N+1 QUOTA_EXCEEDED, a settle frees one slot", async () => {
    const { adm } = make({ quotaRetryAfterMs: 1500 });
    const t = tenant();
    const limits = { ...BIG, maxConcurrentRequests: 3 };
    const ids = [cmp(), cmp(), cmp()];
    for (const id of ids)
      expect((await adm.admit({ tenantId: t, completionId: id, maxTokens: 1, costWeight: 1, limits })).ok).toBe(true);
    const r = await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 1, costWeight: 1, limits });
    expect(r).toEqual({
      ok: false,
      error: { code: "QUOTA_EXCEEDED", limit: "maxConcurrentRequests", retryAfterMs: 1500 },
    });
    await adm.settle(t, ids[0], 1);
    expect((await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 1, costWeight: 1, limits })).ok).toBe(true);
    expect((await adm.usage(t)).concurrent).toBe(3);
  });

  test("maxOutstandingTokens: exactly at the limit admitted, over refused; progress releases", async () => {
    const { adm } = make();
    const t = tenant();
    const limits = { ...BIG, maxOutstandingTokens: 100 };
    const first = cmp();
    expect((await adm.admit({ tenantId: t, completionId: first, maxTokens: 10, costWeight: 3, limits })).ok).toBe(true); // 30
    expect((await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 70, costWeight: 1, limits })).ok).toBe(true); // 100
    const r = await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 1, costWeight: 1, limits });
    expect(r).toEqual({
      ok: false,
      error: { code: "QUOTA_EXCEEDED", limit: "maxOutstandingTokens", retryAfterMs: 1000 },
    });
    await adm.progress(t, first, 1); // 3 released
    expect((await adm.usage(t)).outstandingTokens).toBe(97);
    await adm.progress(t, first, 1); // same running total: nothing more
    await adm.progress(t, first, 0); // older total: nothing
    expect((await adm.usage(t)).outstandingTokens).toBe(97);
    expect((await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 3, costWeight: 1, limits })).ok).toBe(true);
    expect((await adm.admit({ tenantId: t, completionId: cmp(), maxTokens: 1, costWeight: 1, limits })).ok).toBe(false);
    await adm.progress(t, first, 50); // beyond maxTokens: contribution stops at 0
    expect((await adm.usage(t)).outstandingTokens).toBe(73);
  });

  test("global queued tokens: over maxQueuedTokens is UNAVAILABLE and rolls the tenant back", async () => {
    const keys = new RedisKeys(`${env.redisPrefix}-glob`);
    const clock = new ManualClock(1_700_000_000_000);
    const adm = new Admission({ redis: env.redis, keys, maxQueuedTokens: 50, clock, quotaRetryAfterMs: 2000 });
    const [a, b] = [tenant(), tenant()];
    const limits = { ...BIG, requestsPerMinute: 3 };
    for (let i = 0; i < 3; i++)
      expect((await adm.admit({ tenantId: a, completionId: cmp(), maxTokens: 10, costWeight: 1, limits })).ok).toBe(
        true,
      );
    const b1 = cmp();
    expect((await adm.admit({ tenantId: b, completionId: b1, maxTokens: 10, costWeight: 2, limits })).ok).toBe(true); // 50 exactly
    const refused = await adm.admit({ tenantId: b, completionId: cmp(), maxTokens: 1, costWeight: 1, limits });
    expect(refused).toEqual({
      ok: false,
      error: { code: "UNAVAILABLE", limit: "globalQueuedTokens", retryAfterMs: 2000 },
    });
    expect(await adm.usage(b)).toEqual({ concurrent: 1, outstandingTokens: 20, queuedTokensGlobal: 50 });
    // the refused request did not consume B's requests bucket: 2 more fit once there is room
    await adm.settle(b, b1, 0);
    expect((await adm.admit({ tenantId: b, completionId: cmp(), maxTokens: 1, costWeight: 1, limits })).ok).toBe(true);
    expect((await adm.admit({ tenantId: b, completionId: cmp(), maxTokens: 1, costWeight: 1, limits })).ok).toBe(true);
    expect((await adm.admit({ tenantId: b, completionId: cmp(), maxTokens: 1, costWeight: 1, limits })).ok).toBe(false);
  });
});

describe("Admission idempotency", () => {
  test("admit twice with one completionId reserves once; settle twice releases once", async () => {
    const { adm } = make();
    const t = tenant();
    const id = cmp();
    const limits = { ...BIG, maxConcurrentRequests: 2 };
    expect(await adm.admit({ tenantId: t, completionId: id, maxTokens: 10, costWeight: 1, limits })).toEqual({
      ok: true,
      value: { reservedTokens: 10 },
    });
    expect(await adm.admit({ tenantId: t, completionId: id, maxTokens: 10, costWeight: 1, limits })).toEqual({
      ok: true,
      value: { reservedTokens: 10 },
    });
    expect(await adm.usage(t)).toMatchObject({ concurrent: 1, outstandingTokens: 10 });
    const other = cmp();
    expect((await adm.admit({ tenantId: t, completionId: other, maxTokens: 10, costWeight: 1, limits })).ok).toBe(true);
    await adm.settle(t, id, 4);
    await adm.settle(t, id, 4);
    await adm.settle(t, id, 9);
    await adm.progress(t, id, 9);
    await adm.settle(t, "cmp_never_admitted", 3);
    expect(await adm.usage(t)).toMatchObject({ concurrent: 1, outstandingTokens: 10 });
    // a settled completion admitted again is not counted again
    expect((await adm.admit({ tenantId: t, completionId: id, maxTokens: 10, costWeight: 1, limits })).ok).toBe(true);
    expect(await adm.usage(t)).toMatchObject({ concurrent: 1, outstandingTokens: 10 });
    await adm.settle(t, other, 10);
    expect(await adm.usage(t)).toMatchObject({ concurrent: 0, outstandingTokens: 0 });
  });
});

describe("Admission.abandon (an admit whose answer was lost)", () => {
  test("undoes the admission entirely (request, tokens, slot, global share); a no-op when none; the id can be admitted again", async () => {
    const { adm } = make();
    const t = tenant();
    const id = cmp();
    const limits = { ...BIG, requestsPerMinute: 1, maxConcurrentRequests: 1 };
    const before = await adm.usage(t);
    expect((await adm.admit({ tenantId: t, completionId: id, maxTokens: 10, costWeight: 1, limits })).ok).toBe(true);
    expect(await adm.usage(t)).toMatchObject({ concurrent: 1, outstandingTokens: 10 });
    await adm.abandon(t, id);
    await adm.abandon(t, id);
    await adm.abandon(t, "cmp_never_admitted");
    expect(await adm.usage(t)).toEqual(before);
    expect(await env.redis.exists(env.keys.admissionRecord(t, id))).toBe(0);
    // the request was refunded (requestsPerMinute 1) and the record is gone: admitted afresh
    expect(await adm.admit({ tenantId: t, completionId: id, maxTokens: 10, costWeight: 1, limits })).toEqual({
      ok: true,
      value: { reservedTokens: 10 },
    });
    expect(await adm.usage(t)).toMatchObject({ concurrent: 1, outstandingTokens: 10 });
  });
});

describe("Admission under concurrency", () => {
  test("50 concurrent admits on 50 connections against maxConcurrentRequests 10 admit exactly 10", async () => {
    const clients: Redis[] = [];
    for (let i = 0; i < 50; i++) clients.push(createRedis({ url: env.redisUrl }));
    try {
      const t = tenant();
      const limits = { ...BIG, maxConcurrentRequests: 10 };
      const admissions = clients.map((redis) => new Admission({ redis, keys: env.keys, maxQueuedTokens: 1e9 }));
      await Promise.all(clients.map((c) => c.ping()));
      const results = await Promise.all(
        admissions.map((a, i) =>
          a.admit({ tenantId: t, completionId: `cmp_race${n}_${i}`, maxTokens: 5, costWeight: 1, limits }),
        ),
      );
      const admitted = results.filter((r) => r.ok).length;
      expect(admitted).toBe(10);
      for (const r of results)
        if (!r.ok)
          expect(r.error).toEqual({ code: "QUOTA_EXCEEDED", limit: "maxConcurrentRequests", retryAfterMs: 1000 });
      expect(await admissions[0].usage(t)).toMatchObject({ concurrent: 10, outstandingTokens: 50 });
    } finally {
      for (const c of clients) c.disconnect();
    }
  });

  test("property: any interleaving of admit/progress/settle, once all settled, leaves every counter at zero", async () => {
    let run = 0;
    const op = fc.record({
      kind: fc.constantFrom("admit", "progress", "settle"),
      c: fc.integer({ min: 0, max: 5 }),
      tokens: fc.integer({ min: 0, max: 40 }),
      cw: fc.constantFrom(1, 1.5, 3),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(op, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 12 }),
        async (batches) => {
          const keys = new RedisKeys(`${env.redisPrefix}-prop${++run}`);
          const adm = new Admission({ redis: env.redis, keys, maxQueuedTokens: 150 });
          const tenants = ["ten_p1", "ten_p2"];
          const limits: TenantLimits = {
            requestsPerMinute: 1000,
            tokensPerMinute: 1e6,
            maxConcurrentRequests: 3,
            maxOutstandingTokens: 100,
          };
          const id = (c: number) => `cmp_${c}`;
          const t = (c: number) => tenants[c % 2];
          for (const batch of batches) {
            // each batch runs concurrently: an arbitrary interleaving of its scripts
            await Promise.all(
              batch.map((o) =>
                o.kind === "admit"
                  ? adm.admit({
                      tenantId: t(o.c),
                      completionId: id(o.c),
                      maxTokens: Math.max(1, o.tokens),
                      costWeight: o.cw,
                      limits,
                    })
                  : o.kind === "progress"
                    ? adm.progress(t(o.c), id(o.c), o.tokens)
                    : adm.settle(t(o.c), id(o.c), o.tokens),
              ),
            );
            for (const tn of tenants) {
              const u = await adm.usage(tn);
              expect(u.concurrent).toBeGreaterThanOrEqual(0);
              expect(u.concurrent).toBeLessThanOrEqual(limits.maxConcurrentRequests);
              expect(u.outstandingTokens).toBeGreaterThanOrEqual(0);
              expect(u.outstandingTokens).toBeLessThanOrEqual(limits.maxOutstandingTokens);
              expect(u.queuedTokensGlobal).toBeLessThanOrEqual(150);
            }
          }
          await Promise.all([0, 1, 2, 3, 4, 5].map((c) => adm.settle(t(c), id(c), 7)));
          for (const tn of tenants)
            expect(await adm.usage(tn)).toEqual({ concurrent: 0, outstandingTokens: 0, queuedTokensGlobal: 0 });
          expect(await env.redis.hlen(keys.globalQueuedContributions())).toBe(0);
        },
      ),
      { numRuns: 60 },
    );
  });
});
