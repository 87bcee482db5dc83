import type { ExpertLease } from "@lite/model";
import { CacheError } from "./cache.errors";
import { ExpertResidency } from "./expert-residency";
import type { ExpertResidencyOptions } from "./expert-residency.types";
import { TieredExpertStore } from "./tiered-expert-store";
import { fit, openTinyCacheModel, tenants, type TinyCacheModel } from "./testing/tiny-cache.fixture";
import { tokenWorkingSetBytes } from "./working-set";

/** Residency, leases, quotas and eviction on real files and onnxruntime sessions (tiny model). */
describe("TieredExpertStore", () => {
  let m: TinyCacheModel;
  beforeAll(async () => {
    m = await openTinyCacheModel();
  });
  afterAll(() => m.cleanup());

  const open = (opts: ExpertResidencyOptions) => {
    const residency = new ExpertResidency(opts);
    return { residency, store: new TieredExpertStore(residency, m.ctx) };
  };
  /** tier 0 experts: equal sizes, so "n experts" is an exact number of bytes */
  const t0 = () => m.tierRefs(0);
  const size = () => t0()[0].file.bytes;

  it("tier 0 experts all have the same size (the limits below count in experts)", () => {
    expect(new Set(t0().map((r) => r.file.bytes)).size).toBe(1);
  });

  it("acquire answers only when HOT and starts nothing; load makes a real session HOT; get = load + acquire", async () => {
    const { residency, store } = open(fit(10 * size()));
    const [e] = t0();
    expect(store.acquire(e, tenants("A"))).toBeUndefined();
    expect(store.levelOf(e)).toBe("COLD");
    expect(residency.usedBytes("HOT")).toBe(0);
    await store.load(e, tenants("A"));
    expect(store.levelOf(e)).toBe("HOT");
    const lease = store.acquire(e, tenants("A"))!;
    expect(lease.session.inputNames).toEqual(["x"]);
    lease.release();
    const viaGet = await store.get(t0()[1], tenants("A"));
    expect(viaGet.session.outputNames).toEqual(["y"]);
    viaGet.release();
    // bytes measured: the verified files' lengths
    expect(residency.usedBytes("HOT")).toBe(2 * size());
    expect(residency.usedBytes("WARM")).toBe(2 * size());
    await residency.close();
  });

  it("firstUseBy names each tenant's first use since the expert became HOT, again after an eviction", async () => {
    const { residency, store } = open(fit(size(), 2 * size()));
    const [e, other] = t0();
    await store.load(e, tenants("A"));
    const first = store.acquire(e, tenants("A", "B"))!;
    expect([...first.firstUseBy!].sort()).toEqual(["A", "B"]);
    first.release();
    const again = store.acquire(e, tenants("A"))!;
    expect([...again.firstUseBy!]).toEqual([]);
    again.release();
    const c = store.acquire(e, tenants("B", "C"))!;
    expect([...c.firstUseBy!]).toEqual(["C"]);
    c.release();
    // capacity one expert: loading another demotes e (HOT → WARM); back HOT, every use is first again
    await store.load(other, tenants("A"));
    expect(store.levelOf(e)).toBe("WARM");
    await store.load(e, tenants("A"));
    const afterReload = store.acquire(e, tenants("A", "B"))!;
    expect([...afterReload.firstUseBy!].sort()).toEqual(["A", "B"]);
    afterReload.release();
    await residency.close();
  });

  it("capacity exactly full holds every entry; one byte less or one expert more evicts (least recently used first)", async () => {
    const [a, b, c, d] = t0();
    const exact = open(fit(3 * size(), 10 * size()));
    for (const e of [a, b, c]) await exact.store.load(e, tenants("A"));
    expect(exact.residency.usedBytes("HOT")).toBe(3 * size());
    expect([a, b, c].map((e) => exact.store.levelOf(e))).toEqual(["HOT", "HOT", "HOT"]);
    exact.store.acquire(a, tenants("A"))!.release(); // a used last: b is now the least valuable
    await exact.store.load(d, tenants("A"));
    expect([a, b, c, d].map((e) => exact.store.levelOf(e))).toEqual(["HOT", "WARM", "HOT", "HOT"]);
    expect(exact.residency.usedBytes("HOT")).toBe(3 * size());
    await exact.residency.close();

    const short = open(fit(3 * size() - 1, 10 * size()));
    for (const e of [a, b, c]) await short.store.load(e, tenants("A"));
    expect([a, b, c].map((e) => short.store.levelOf(e))).toEqual(["WARM", "HOT", "HOT"]);
    expect(short.residency.usedBytes("HOT")).toBe(2 * size());
    await short.residency.close();
  });

  it("WARM capacity: an entry pushed out of WARM goes COLD (session released, bytes dropped)", async () => {
    const [a, b, c] = t0();
    const { residency, store } = open(fit(size(), 2 * size()));
    for (const e of [a, b, c]) await store.load(e, tenants("A"));
    expect([a, b, c].map((e) => store.levelOf(e))).toEqual(["COLD", "WARM", "HOT"]);
    expect(residency.usedBytes("WARM")).toBe(2 * size());
    expect(residency.tenantFigures("A").evictionsSuffered).toBe(3); // a HOT→WARM, a WARM→COLD, b HOT→WARM
    await residency.close();
  });

  it("a tenant's quota exactly reached holds; past it the tenant evicts its own least valuable entry", async () => {
    const [a, b, c, x] = t0();
    const quotas = { A: { hotMemoryBytes: 2 * size(), weight: 1 }, B: { weight: 1 } };
    const { residency, store } = open({
      ...fit(10 * size()),
      quotas: { quotaOf: (t) => quotas[t as "A" | "B"] },
    });
    await store.load(x, tenants("B"));
    await store.load(a, tenants("A"));
    await store.load(b, tenants("A"));
    expect(residency.tenantFigures("A").hotBytes).toBe(2 * size());
    expect([a, b].map((e) => store.levelOf(e))).toEqual(["HOT", "HOT"]);
    await store.load(c, tenants("A"));
    expect([a, b, c, x].map((e) => store.levelOf(e))).toEqual(["WARM", "HOT", "HOT", "HOT"]);
    const fa = residency.tenantFigures("A");
    expect(fa.hotBytes).toBe(2 * size());
    expect(fa.evictionsCaused).toBe(1);
    expect(fa.evictionsSufferedFromOthers).toBe(0);
    expect(residency.tenantFigures("B").evictionsSuffered).toBe(0);
    await residency.close();
  });

  it("a lowered quota applies at once to idle entries, and to leased ones as their leases end", async () => {
    const [a, b, c] = t0();
    const quota = { hotMemoryBytes: 3 * size(), weight: 1 };
    const { residency, store } = open({ ...fit(10 * size()), quotas: { quotaOf: () => ({ ...quota }) } });
    for (const e of [a, b, c]) await store.load(e, tenants("A"));
    const la = store.acquire(a, tenants("A"))!;
    const lb = store.acquire(b, tenants("A"))!;
    quota.hotMemoryBytes = 2 * size(); // exactly what the leased entries hold
    store.acquire(a, tenants("A"))!.release(); // each use asks the port
    expect([a, b, c].map((e) => store.levelOf(e))).toEqual(["HOT", "HOT", "WARM"]);
    expect(residency.tenantFigures("A").hotBytes).toBe(2 * size());
    quota.hotMemoryBytes = size();
    store.acquire(b, tenants("A"))!.release();
    expect(residency.tenantFigures("A").hotBytes).toBe(2 * size()); // both leased: nothing may go yet
    la.release();
    expect([a, b].map((e) => store.levelOf(e))).toEqual(["WARM", "HOT"]);
    expect(residency.tenantFigures("A").hotBytes).toBe(size());
    lb.release();
    await residency.close();
  });

  it("charges a shared entry in equal parts (rounded up), and joining a use counts against the quota", async () => {
    const [a, b] = t0();
    const quotas = { A: { hotMemoryBytes: Math.ceil(size() / 2) + size(), weight: 1 }, B: { weight: 1 } };
    const { residency, store } = open({ ...fit(10 * size()), quotas: { quotaOf: (t) => quotas[t as "A" | "B"] } });
    await store.load(a, tenants("A", "B"));
    expect(residency.charges("HOT")).toEqual(
      new Map([
        ["A", Math.ceil(size() / 2)],
        ["B", Math.ceil(size() / 2)],
      ]),
    );
    await store.load(b, tenants("A"));
    expect(residency.tenantFigures("A").hotBytes).toBe(quotas.A.hotMemoryBytes); // exactly at its quota
    await residency.close();
  });

  it("refuses a quota or a capacity that can never hold the expert, naming the limit", async () => {
    const [a] = t0();
    const small = open({ ...fit(10 * size()), quotas: { quotaOf: () => ({ hotMemoryBytes: size() - 1, weight: 1 }) } });
    const refused = await small.store.load(a, tenants("A")).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CacheError);
    expect((refused as CacheError).code).toBe("QUOTA_EXCEEDED");
    expect((refused as CacheError).message).toMatch(/hotMemoryBytes of tenant A/);
    // two tenants share the part: each needs only half the bytes
    await small.store.load(a, tenants("A", "B"));
    expect(small.store.levelOf(a)).toBe("HOT");
    await small.residency.close();

    const tiny = open(fit(size() - 1, 10 * size()));
    await expect(tiny.store.load(a, tenants("A"))).rejects.toThrow(/HOT_CAPACITY_BYTES/);
    await tiny.residency.close();
  });

  it("refuses a capacity smaller than one token's experts, and accepts it exactly", () => {
    const need = tokenWorkingSetBytes(m.runtime);
    // tiny: 2 layers × (t2: 2×1 … the two largest of 2, 2, 2, 2 experts per tier) × the largest file
    const largest = Math.max(...m.refs.map((r) => r.file.bytes));
    expect(need).toBe(2 * 4 * largest);
    expect(() => new ExpertResidency(fit(need)).assertFits("tiny", need)).not.toThrow();
    expect(() => new ExpertResidency(fit(need - 1, need)).assertFits("tiny", need)).toThrow(/HOT_CAPACITY_BYTES/);
    expect(() => new ExpertResidency(fit(need, need - 1)).assertFits("tiny", need)).toThrow(/WARM_CAPACITY_BYTES/);
  });

  it("an entry in use is never evicted: a load that needs its room waits for the release", async () => {
    const [a, b] = t0();
    const { residency, store } = open(fit(size(), 2 * size()));
    await store.load(a, tenants("A"));
    const lease = store.acquire(a, tenants("A"))!;
    let loaded = false;
    const loading = store.load(b, tenants("B")).then(() => (loaded = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(loaded).toBe(false);
    expect(store.levelOf(a)).toBe("HOT");
    expect(residency.usedBytes("HOT")).toBe(size());
    lease.release();
    await loading;
    expect([store.levelOf(a), store.levelOf(b)]).toEqual(["WARM", "HOT"]);
    await residency.close();
  });

  it("a victim's sole entries survive a neighbour scanning every expert", async () => {
    const all = m.refs;
    const working = t0().slice(0, 3);
    // room for the victim's working set and a little more, well under the whole model
    const { residency, store } = open(fit(8 * size(), 12 * size()));
    for (const e of working) await store.load(e, tenants("victim"));
    for (let round = 0; round < 2; round++)
      for (const e of all) {
        const lease = await store.get(e, tenants("neighbour"));
        lease.release();
        for (const w of working) store.acquire(w, tenants("victim"))?.release();
      }
    expect(working.map((e) => store.levelOf(e))).toEqual(["HOT", "HOT", "HOT"]);
    const v = residency.tenantFigures("victim");
    expect(v.evictionsSuffered).toBe(0);
    expect(v.misses).toBe(3); // its first use of each, nothing after
    expect(v.hitRate).toBeGreaterThan(0.95);
    expect(residency.tenantFigures("neighbour").evictionsCaused).toBeGreaterThan(0);
    expect(residency.usedBytes("HOT")).toBeLessThanOrEqual(8 * size());
    await residency.close();
  });

  it("under pressure the tenant furthest over its weighted share loses entries first", async () => {
    const refs = t0();
    const weights: Record<string, number> = { heavy: 3, light: 1, newcomer: 1 };
    const { residency, store } = open({
      ...fit(6 * size(), 20 * size()),
      quotas: { quotaOf: (t) => ({ weight: weights[t] }) },
    });
    // heavy 3 entries (share 4.5 of 6 with light alone), light 3 (share 1.5): light is furthest over
    for (const e of refs.slice(0, 3)) await store.load(e, tenants("heavy"));
    for (const e of refs.slice(3, 6)) await store.load(e, tenants("light"));
    await store.load(refs[6], tenants("newcomer"));
    expect(refs.slice(0, 7).map((e) => store.levelOf(e))).toEqual(["HOT", "HOT", "HOT", "WARM", "HOT", "HOT", "HOT"]);
    expect(residency.tenantFigures("light").evictionsSufferedFromOthers).toBe(1);
    expect(residency.tenantFigures("heavy").evictionsSuffered).toBe(0);
    await residency.close();
  });

  it("is deterministic: the same calls give the same residency", async () => {
    const run = async () => {
      const { residency, store } = open({
        ...fit(5 * size(), 7 * size()),
        quotas: { quotaOf: (t) => ({ hotMemoryBytes: 3 * size(), weight: t === "A" ? 2 : 1 }) },
        epochUses: 7,
      });
      const refs = t0();
      let lease: ExpertLease | undefined;
      for (let i = 0; i < 40; i++) {
        const who = tenants(["A", "B", "C"][(i * 7) % 3], ...(i % 5 === 0 ? ["B"] : []));
        const e = refs[(i * 5) % refs.length];
        // the previous use ends before the next load (the property test covers loads that wait)
        lease?.release();
        await store.load(e, who);
        lease = store.acquire(e, who);
      }
      lease?.release();
      // ids carry the store's own id (m<n>): compare the expert keys
      const resident = residency.resident().map((r) => ({ ...r, id: r.id.slice(r.id.indexOf("|") + 1) }));
      const out = { resident, figures: residency.figures() };
      await residency.close();
      return out;
    };
    const first = await run();
    expect(first.resident.length).toBeGreaterThan(3);
    expect(await run()).toEqual(first);
  });

  it("an epoch without use stops a tenant's charge: its part moves to the tenants still using the entry", async () => {
    const [a] = t0();
    const { residency, store } = open({ ...fit(4 * size()), epochUses: 4 });
    await store.load(a, tenants("A", "B"));
    expect(residency.charges("HOT").get("B")).toBe(Math.ceil(size() / 2));
    // only A uses it for two whole epochs
    for (let i = 0; i < 8; i++) store.acquire(a, tenants("A"))!.release();
    expect(residency.charges("HOT")).toEqual(new Map([["A", size()]]));
    expect(residency.tenantFigures("B").hotBytes).toBe(0);
    await residency.close();
  });

  it("per-tenant figures: tenant A's numbers do not move while only B works", async () => {
    const refs = t0();
    const { residency, store } = open(fit(6 * size()));
    for (const e of refs.slice(0, 2)) (await store.get(e, tenants("A"))).release();
    store.acquire(refs[0], tenants("A"))!.release();
    const before = residency.tenantFigures("A");
    expect(before).toMatchObject({ hotBytes: 2 * size(), warmBytes: 2 * size(), hits: 1, misses: 2, loads: 2 });
    expect(before.loadsByTier).toEqual({ [refs[0].tierId]: 2 });
    for (const e of refs.slice(2)) (await store.get(e, tenants("B"))).release();
    for (const e of refs.slice(2)) store.acquire(e, tenants("B"))?.release();
    expect(residency.tenantFigures("A")).toEqual(before);
    const b = residency.tenantFigures("B");
    expect(b).toMatchObject({ loads: refs.length - 2, misses: refs.length - 2 });
    expect(b.hits).toBeGreaterThan(0);
    expect(b.evictionsCaused).toBeGreaterThan(0); // B's own entries: A is within its share
    await residency.close();
  });

  it("loads by tier name only the tiers loaded for the tenant", async () => {
    const { residency, store } = open(fit(100 * size(), 100 * size()));
    (await store.get(m.tierRefs(1)[0], tenants("A"))).release();
    (await store.get(m.tierRefs(3)[0], tenants("B"))).release();
    expect(residency.tenantFigures("A").loadsByTier).toEqual({ [m.tierRefs(1)[0].tierId]: 1 });
    expect(residency.tenantFigures("B").loadsByTier).toEqual({ [m.tierRefs(3)[0].tierId]: 1 });
    await residency.close();
  });
});
