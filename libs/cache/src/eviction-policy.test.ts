import { ExpertResidency } from "./expert-residency";
import type { EvictionPolicy } from "./expert-residency.types";
import { TieredExpertStore } from "./tiered-expert-store";
import { fit, openTinyCacheModel, tenants, type TinyCacheModel } from "./testing/tiny-cache.fixture";

/**
 * The eviction policies side by side on real files and sessions (tiny model): "fair" (the
 * default) and "lru", the plain global-LRU baseline of bench/memory.bench.ts.
 */
describe("eviction policy", () => {
  let m: TinyCacheModel;
  beforeAll(async () => {
    m = await openTinyCacheModel();
  });
  afterAll(() => m.cleanup());

  /** tier 0 experts: equal sizes, so capacities count in experts */
  const t0 = () => m.tierRefs(0);
  const size = () => t0()[0].file.bytes;
  const open = (eviction: EvictionPolicy | undefined, hotExperts: number, quotaExperts?: number) => {
    const residency = new ExpertResidency({
      ...fit(hotExperts * size(), 2 * hotExperts * size()),
      quotas: {
        quotaOf: () =>
          quotaExperts === undefined
            ? { weight: 1 }
            : { weight: 1, hotMemoryBytes: quotaExperts * size(), warmMemoryBytes: quotaExperts * size() },
      },
      ...(eviction && { eviction }),
    });
    return { residency, store: new TieredExpertStore(residency, m.ctx) };
  };

  /** The victim loads one expert (its sole entry), then the neighbour loads `neighbourLoads`. */
  async function scenario(eviction: EvictionPolicy | undefined, neighbourLoads: number) {
    const [mine, ...others] = t0();
    const { residency, store } = open(eviction, 4);
    await store.load(mine, tenants("victim"));
    for (const e of others.slice(0, neighbourLoads)) {
      const lease = await store.get(e, tenants("neighbour"));
      lease.release();
    }
    const result = {
      level: store.levelOf(mine),
      suffered: residency.tenantFigures("victim").evictionsSufferedFromOthers,
      hotBytes: residency.usedBytes("HOT"),
    };
    await residency.close();
    return result;
  }

  it("at the limit (capacity exactly full) neither policy evicts the victim's sole entry", async () => {
    for (const eviction of ["fair", "lru"] as const)
      expect(await scenario(eviction, 3)).toEqual({ level: "HOT", suffered: 0, hotBytes: 4 * size() });
  });

  it("one expert past capacity: lru evicts the victim's sole entry (least recently used), fair does not", async () => {
    expect(await scenario("lru", 4)).toEqual({ level: "WARM", suffered: 1, hotBytes: 4 * size() });
    expect(await scenario("fair", 4)).toEqual({ level: "HOT", suffered: 0, hotBytes: 4 * size() });
    // fair is the default
    expect(await scenario(undefined, 4)).toEqual({ level: "HOT", suffered: 0, hotBytes: 4 * size() });
  });

  it("lru enforces no quota: a tenant's charge passes its hotMemoryBytes, which fair holds it to", async () => {
    for (const [eviction, held] of [
      ["fair", 2],
      ["lru", 3],
    ] as const) {
      const { residency, store } = open(eviction, 10, 2);
      for (const e of t0().slice(0, 3)) await store.load(e, tenants("A"));
      expect(residency.tenantFigures("A").hotBytes).toBe(held * size());
      await residency.close();
    }
  });

  it("fair: a tenant at its quota evicts an entry only it uses before one it shares, even a less recently used one", async () => {
    const [shared, own, next] = t0();
    const { residency, store } = open("fair", 10, 2);
    await store.load(shared, tenants("neighbour", "victim")); // the least recently used
    await store.load(own, tenants("neighbour"));
    (await store.get(next, tenants("neighbour"))).release(); // over its 2-expert quota: one goes
    expect([store.levelOf(shared), store.levelOf(own), store.levelOf(next)]).toEqual(["HOT", "COLD", "HOT"]);
    expect(residency.tenantFigures("victim").evictionsSufferedFromOthers).toBe(0);
    await residency.close();
  });

  it("refuses an unknown policy, naming the option", () => {
    expect(() => new ExpertResidency({ ...fit(size()), eviction: "random" as unknown as EvictionPolicy })).toThrow(
      /eviction must be "fair" or "lru", got random/,
    );
  });
});
