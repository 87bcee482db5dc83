import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import pino from "pino";
import { tokenWorkingSetBytes } from "@lite/cache";
import { ManualClock } from "@lite/core";
import { cachingModelProvider } from "@lite/engine";
import { buildModel, loadModel, type ModelRuntime } from "@lite/model";
import { createRegistry } from "@lite/telemetry";
import { DEFAULT_QUOTA } from "@lite/tenancy";
import { createTenant, createTestEnv, type TestEnv } from "@lite/testing";
import { capacityCheckedModels, createWorkerExpertCache, prismaCacheQuotas } from "./expert-cache";
import { usagePort } from "./usage-port";

/** The worker's expert cache: quotas from PostgreSQL with a TTL, and per-tenant metrics. */
describe("worker expert cache", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv();
  });
  afterAll(() => env.close());

  it("reads each tenant's quota and weight, keeps it for the TTL, then serves the stale one while reading again", async () => {
    const clock = new ManualClock(0);
    const a = await createTenant(env.db, {
      weight: 3,
      quota: { hotMemoryBytes: 1000n, warmMemoryBytes: 5000n, prefetchBytesPerSecond: 3000n },
    });
    const b = await createTenant(env.db, { weight: 1, quota: { hotMemoryBytes: 2000n } });
    const quotas = prismaCacheQuotas(env.db, { ttlMs: 10_000, clock });
    expect(await quotas.quotaOf(a.tenantId)).toEqual({
      hotMemoryBytes: 1000,
      warmMemoryBytes: 5000,
      prefetchBytesPerSecond: 3000,
      weight: 3,
    });
    expect(await quotas.quotaOf(b.tenantId)).toEqual({
      hotMemoryBytes: 2000,
      warmMemoryBytes: Number(DEFAULT_QUOTA.warmMemoryBytes),
      prefetchBytesPerSecond: Number(DEFAULT_QUOTA.prefetchBytesPerSecond),
      weight: 1,
    });
    await env.db.quota.update({ where: { tenantId: a.tenantId }, data: { hotMemoryBytes: 700n } });
    // within the TTL (up to its last ms): the kept answer, synchronously
    clock.advance(9_999);
    expect(quotas.quotaOf(a.tenantId)).toEqual({
      hotMemoryBytes: 1000,
      warmMemoryBytes: 5000,
      prefetchBytesPerSecond: 3000,
      weight: 3,
    });
    // at the TTL: still the kept answer, and a read starts
    clock.advance(1);
    expect(quotas.quotaOf(a.tenantId)).toEqual({
      hotMemoryBytes: 1000,
      warmMemoryBytes: 5000,
      prefetchBytesPerSecond: 3000,
      weight: 3,
    });
    for (let i = 0; i < 100 && (quotas.quotaOf(a.tenantId) as { hotMemoryBytes: number }).hotMemoryBytes !== 700; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(quotas.quotaOf(a.tenantId)).toEqual({
      hotMemoryBytes: 700,
      warmMemoryBytes: 5000,
      prefetchBytesPerSecond: 3000,
      weight: 3,
    });
    // tenant B's answer did not move with A's change
    expect(quotas.quotaOf(b.tenantId)).toMatchObject({ hotMemoryBytes: 2000 });
  });

  it("a tenant without a Quota row (or unknown) has DEFAULT_QUOTA and weight 1", async () => {
    const c = await createTenant(env.db, { weight: 2 });
    await env.db.quota.delete({ where: { tenantId: c.tenantId } });
    const quotas = prismaCacheQuotas(env.db, { ttlMs: 1000 });
    const defaults = {
      hotMemoryBytes: Number(DEFAULT_QUOTA.hotMemoryBytes),
      warmMemoryBytes: Number(DEFAULT_QUOTA.warmMemoryBytes),
      prefetchBytesPerSecond: Number(DEFAULT_QUOTA.prefetchBytesPerSecond),
    };
    expect(await quotas.quotaOf(c.tenantId)).toEqual({ ...defaults, weight: 2 });
    expect(await quotas.quotaOf("ten_absent")).toEqual({ ...defaults, weight: 1 });
  });

  it("refuses a WARM capacity smaller than the HOT one, naming both variables", () => {
    expect(() =>
      createWorkerExpertCache(
        { hotCapacityBytes: 2, warmCapacityBytes: 1, epochUses: 10, quotaTtlMs: 1000 },
        env.db,
        createRegistry(),
      ),
    ).toThrow(/WARM_CAPACITY_BYTES \(1\) must be at least HOT_CAPACITY_BYTES \(2\)/);
  });

  describe("metrics", () => {
    let modelDir: string;
    let root: string;
    let runtime: ModelRuntime;
    const registry = createRegistry();
    let cache: ReturnType<typeof createWorkerExpertCache>;
    beforeAll(async () => {
      modelDir = fs.mkdtempSync(path.join(os.tmpdir(), "lite-worker-cache-"));
      root = buildModel({ modelDir, modelName: "tiny", preset: "tiny" }).root;
      cache = createWorkerExpertCache(
        { hotCapacityBytes: 1 << 20, warmCapacityBytes: 1 << 21, epochUses: 4096, quotaTtlMs: 10_000 },
        env.db,
        registry,
      );
      runtime = await loadModel({ modelDir, modelName: "tiny", expertStore: cache.storeFor });
    });
    afterAll(async () => {
      await runtime.close();
      await cache.residency.close();
      fs.rmSync(modelDir, { recursive: true, force: true });
    });

    it("a model loads only if one token of it fits the capacities: exactly fits, one byte less fails naming the variable", async () => {
      const need = tokenWorkingSetBytes(runtime);
      const open = (hotCapacityBytes: number) => {
        const c = createWorkerExpertCache(
          { hotCapacityBytes, warmCapacityBytes: need, epochUses: 4096, quotaTtlMs: 10_000 },
          env.db,
          createRegistry(),
        );
        const log = pino({ level: "silent" });
        const models = cachingModelProvider({
          modelDir,
          executionProviders: ["cpu"],
          intraOpThreads: 1,
          expertStore: c.storeFor,
          logger: log,
        });
        return { models: capacityCheckedModels(models, c.residency, log), residency: c.residency };
      };
      const fits = open(need);
      await expect(fits.models.get("tiny")).resolves.toMatchObject({ name: "tiny" });
      await fits.models.close();
      const short = open(need - 1);
      await expect(short.models.get("tiny")).rejects.toThrow(
        new RegExp(
          `HOT_CAPACITY_BYTES \\(${need - 1}\\) is smaller than what one token of model tiny needs \\(${need} bytes`,
        ),
      );
      await short.models.close();
    });

    it("per tenant: tenant A's series do not move while only tenant B works", async () => {
      const a = await createTenant(env.db);
      const b = await createTenant(env.db);
      const refs = runtime.expertRefs(runtime.tiers[0].id).flat();
      const store = cache.storeFor({ root, sessionOptions: {} });
      for (const ref of refs.slice(0, 2)) (await store.get(ref, new Set([a.tenantId]))).release();
      store.acquire(refs[0], new Set([a.tenantId]))!.release();
      const before = { text: await registry.metrics() };
      const linesOf = (text: string, tenantId: string) =>
        text
          .split("\n")
          .filter((l) => l.startsWith("lite_expert_cache") && l.includes(`tenant="${tenantId}"`))
          .sort();
      const aBefore = linesOf(before.text, a.tenantId);
      expect(aBefore).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^lite_expert_cache_uses_total\{.*result="hit".* 1$/),
          expect.stringMatching(/^lite_expert_cache_uses_total\{.*result="miss".* 2$/),
          expect.stringMatching(new RegExp(`^lite_expert_cache_loads_total\\{.*tier="${refs[0].tierId}".* 2$`)),
          expect.stringMatching(new RegExp(`^lite_expert_cache_bytes\\{.*level="HOT".* ${2 * refs[0].file.bytes}$`)),
        ]),
      );
      for (const ref of refs.slice(2)) (await store.get(ref, new Set([b.tenantId]))).release();
      const after = { text: await registry.metrics() };
      expect(linesOf(after.text, a.tenantId)).toEqual(aBefore);
      expect(linesOf(after.text, b.tenantId).length).toBeGreaterThan(0);
      await store.close();
    });

    it("prefetch per tenant: its prefetchBytesPerSecond from PostgreSQL, its series only, PREFETCH_BYTES on its own completion once", async () => {
      const tier = runtime.tiers[1].id;
      const refs = runtime.expertRefs(tier).flat();
      const size = refs[0].file.bytes;
      const same = refs.filter((r) => r.file.bytes === size);
      // A may prefetch one expert per second; B has the default quota (256 MiB/s)
      const a = await createTenant(env.db, { quota: { prefetchBytesPerSecond: BigInt(size) } });
      const b = await createTenant(env.db);
      const store = cache.storeFor({ root, sessionOptions: {} });
      const ask = (tenantId: string, sequenceId: string, experts: typeof refs) =>
        store.prefetch!({ tenantId, sequenceId, tierIds: new Set([tier]), experts, live: () => true });
      ask(a.tenantId, "cmp_prefetch_a", same.slice(0, 3));
      await cache.prefetcher.idle();
      const series = (text: string, tenantId: string) =>
        text
          .split("\n")
          .filter((l) => l.startsWith("lite_prefetch") && l.includes(`tenant="${tenantId}"`))
          .sort();
      const aLines = series(await registry.metrics(), a.tenantId);
      expect(aLines).toEqual([
        expect.stringMatching(new RegExp(`^lite_prefetch_bytes_total\\{.*tier="${tier}".* ${size}$`)),
        expect.stringMatching(/^lite_prefetch_throttled_total\{.* 2$/),
      ]);
      ask(b.tenantId, "cmp_prefetch_b", same.slice(3, 5));
      await cache.prefetcher.idle();
      const text = await registry.metrics();
      expect(series(text, a.tenantId)).toEqual(aLines);
      expect(series(text, b.tenantId)).toEqual([
        expect.stringMatching(new RegExp(`^lite_prefetch_bytes_total\\{.*tier="${tier}".* ${2 * size}$`)),
      ]);
      // the usage port writes each completion's PREFETCH_BYTES for its own tenant, once
      const port = usagePort(env.db, cache.prefetcher.usage);
      const usage = (tenantId: string, completionId: string) => ({
        tenantId,
        completionId,
        inputTokens: 1,
        outputTokens: 1,
        expertCallsByTier: {},
        mode: "FAST",
        occurredAt: new Date(),
      });
      // B naming A's completion gets none of A's bytes
      await port.record(usage(b.tenantId, "cmp_prefetch_a"));
      await port.record(usage(a.tenantId, "cmp_prefetch_a"));
      await port.record(usage(a.tenantId, "cmp_prefetch_a")); // a replayed finalisation
      await port.record(usage(b.tenantId, "cmp_prefetch_b"));
      const rows = await env.db.usageEvent.findMany({
        where: { meter: "PREFETCH_BYTES", tenantId: { in: [a.tenantId, b.tenantId] } },
        orderBy: { tenantId: "asc" },
      });
      expect(
        rows
          .map((r) => ({
            tenantId: r.tenantId,
            completionId: r.completionId,
            dimension: r.dimension,
            quantity: r.quantity,
          }))
          .sort((x, y) => (x.tenantId < y.tenantId ? -1 : 1)),
      ).toEqual(
        [
          { tenantId: a.tenantId, completionId: "cmp_prefetch_a", dimension: tier, quantity: BigInt(size) },
          { tenantId: b.tenantId, completionId: "cmp_prefetch_b", dimension: tier, quantity: BigInt(2 * size) },
        ].sort((x, y) => (x.tenantId < y.tenantId ? -1 : 1)),
      );
      await store.close();
    });
  });
});
