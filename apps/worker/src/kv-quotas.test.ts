/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ManualClock } from "@lite/core";
import { buildModel, KvCache, loadModel, resolveModeTiers, type ModelRuntime, type SequenceSpec } from "@lite/model";
import { createRegistry } from "@lite/telemetry";
import { DEFAULT_QUOTA } from "@lite/tenancy";
import { createTenant, createTestEnv, type TestEnv } from "@lite/testing";
import { createWorkerKvLedger, prismaKvQuotas } from "./kv-quotas";

/** The worker's KV quotas: kvCacheBytes from PostgreSQL with a TTL, and the per-tenant series. */
describe("worker KV quotas", () => {
  let env: TestEnv;
  let modelDir: string;
  beforeAll(async () => {
    env = await createTestEnv();
    modelDir = fs.mkdtempSync(path.join(os.tmpdir(), "lite-kv-"));
    buildModel({ modelDir, modelName: "tiny", preset: "tiny" });
  });
  afterAll(async () => {
    fs.rmSync(modelDir, { recursive: true, force: true });
    await env.close();
  });

  it("reads each tenant's kvCacheBytes (DEFAULT_QUOTA without a row), keeps it for the TTL, then reads again", async () => {
    const clock = new ManualClock(0);
    const a = await createTenant(env.db, { quota: { kvCacheBytes: 40_000n } });
    const b = await createTenant(env.db);
    await env.db.quota.delete({ where: { tenantId: b.tenantId } });
    const quotas = prismaKvQuotas(env.db, { ttlMs: 10_000, clock });
    expect(await quotas.kvCacheBytes(a.tenantId)).toBe(40_000);
    expect(await quotas.kvCacheBytes(b.tenantId)).toBe(Number(DEFAULT_QUOTA.kvCacheBytes));
    await env.db.quota.update({ where: { tenantId: a.tenantId }, data: { kvCacheBytes: 8192n } });
    clock.advance(9_999);
    expect(quotas.kvCacheBytes(a.tenantId)).toBe(40_000); // kept, synchronously
    clock.advance(1);
    expect(quotas.kvCacheBytes(a.tenantId)).toBe(40_000); // stale, while it is read again
    for (let i = 0; i < 100 && quotas.kvCacheBytes(a.tenantId) !== 8192; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(quotas.kvCacheBytes(a.tenantId)).toBe(8192);
    expect(quotas.kvCacheBytes(b.tenantId)).toBe(Number(DEFAULT_QUOTA.kvCacheBytes));
  });

  it("lite_kv_bytes and lite_kv_pauses_total move only with the tenant's own sequences", async () => {
    const block = new KvCache(2, 32).blockBytes; // tiny: 2 layers, d_model 32
    const tight = await createTenant(env.db, { quota: { kvCacheBytes: BigInt(4 * block) } });
    const roomy = await createTenant(env.db, { quota: { kvCacheBytes: BigInt(64 * block) } });
    const registry = createRegistry();
    const ledger = createWorkerKvLedger(env.db, registry, { ttlMs: 60_000 });
    const rt: ModelRuntime = await loadModel({ modelDir, modelName: "tiny", kvLedger: ledger });
    try {
      const fast = resolveModeTiers(rt.tiers, "FAST");
      const seq = (id: string, tenantId: string, prompt: string): SequenceSpec => ({
        id,
        tenantId,
        promptTokens: rt.tokenizer.encode(prompt),
        routingSeed: 5n,
        tierIds: fast,
        temperature: 0,
        maxTokens: 40,
      });
      const specs = [
        seq("t0", tight.tenantId, "tight tenant, first sequence"),
        seq("t1", tight.tenantId, "tight tenant, second one"),
        seq("r0", roomy.tenantId, "roomy tenant, one sequence"),
      ];
      const batch = rt.createBatch();
      specs.forEach((s) => batch.add(s));
      const series = async (name: string) =>
        Object.fromEntries(
          ((await registry.getSingleMetric(name)!.get()).values ?? []).map((v) => [String(v.labels.tenant), v.value]),
        );
      const done = new Set<string>();
      let samples = 0;
      while (done.size < specs.length) {
        const ids = specs.map((s) => s.id).filter((id) => !done.has(id) && batch.waiting(id) === undefined);
        if (ids.length === 0) {
          await batch.whenReady();
          continue;
        }
        for (const o of await batch.step(ids)) if (o.finished) done.add(o.id);
        const bytes = await series("lite_kv_bytes");
        // each tenant's gauge is its own sequences' bytes, within its quota
        const own = (t: string) => specs.filter((s) => s.tenantId === t).reduce((n, s) => n + batch.kvBytes(s.id), 0);
        for (const t of [tight.tenantId, roomy.tenantId]) expect(bytes[t] ?? 0).toBe(own(t));
        expect(bytes[tight.tenantId] ?? 0).toBeLessThanOrEqual(4 * block);
        samples++;
      }
      expect(samples).toBeGreaterThan(10);
      const pauses = await series("lite_kv_pauses_total");
      expect(pauses[tight.tenantId]).toBe(ledger.pauses(tight.tenantId));
      expect(pauses[tight.tenantId]).toBeGreaterThan(0);
      // the roomy tenant has no pause series: another tenant's pauses are not its own
      expect(pauses[roomy.tenantId]).toBeUndefined();
      expect(ledger.pauses(roomy.tenantId)).toBe(0);
      const text = await registry.metrics();
      expect(text).toContain(`lite_kv_pauses_total{tenant="${tight.tenantId}"}`);
      expect(text).not.toContain(`lite_kv_pauses_total{tenant="${roomy.tenantId}"}`);
    } finally {
      await rt.close();
    }
  });
});
