import { ManualClock } from "@lite/core";
import { loadModel, type ExpertRef, type ModelRuntime, type SequenceSpec, type StepOutput } from "@lite/model";
import { Registry } from "prom-client";
import { ExpertPrefetcher } from "./expert-prefetcher";
import { ExpertResidency } from "./expert-residency";
import { fixedQuotas, type TenantCacheQuota } from "./cache-quota";
import { createPrefetchMetrics } from "./prefetch-metrics";
import { TieredExpertStore } from "./tiered-expert-store";
import { openTinyCacheModel, type TinyCacheModel } from "./testing/tiny-cache.fixture";
import { totalExpertBytes } from "./working-set";

/**
 * Prefetch on the tiny model with real ONNX sessions: each sequence's next-layer experts are
 * predicted in the decode step and fetched off it, only from its TierSet, within its
 * tenant's prefetchBytesPerSecond bucket, counted per tenant and per sequence; tokens are
 * the same with prefetch on or off; a prefetched next layer does not park.
 */
describe("ExpertPrefetcher", () => {
  let m: TinyCacheModel;
  beforeAll(async () => {
    m = await openTinyCacheModel();
  });
  afterAll(() => m.cleanup());

  interface Rig {
    rt: ModelRuntime;
    residency: ExpertResidency;
    prefetcher: ExpertPrefetcher;
    registry: Registry;
    store: () => TieredExpertStore;
    close(): Promise<void>;
  }

  async function rig(
    opts: {
      prefetch?: boolean;
      capacityBytes?: number;
      quotas?: Record<string, TenantCacheQuota>;
      clock?: ManualClock;
      park?: boolean;
    } = {},
  ): Promise<Rig> {
    const capacity = opts.capacityBytes ?? totalExpertBytes(m.runtime);
    const registry = new Registry();
    const quotas = fixedQuotas(opts.quotas ?? {}, { weight: 1 });
    const residency = new ExpertResidency({
      hotCapacityBytes: capacity,
      warmCapacityBytes: capacity,
      quotas,
      observer: {
        used: () => undefined,
        loaded: () => undefined,
        evicted: () => undefined,
        ...createPrefetchMetrics(registry),
      },
    });
    const prefetcher = new ExpertPrefetcher(residency, quotas, { enabled: opts.prefetch ?? true, clock: opts.clock });
    let store: TieredExpertStore | undefined;
    const rt = await loadModel({
      modelDir: m.modelDir,
      modelName: "tiny",
      expertStore: (ctx) => (store = new TieredExpertStore(residency, ctx, prefetcher)),
      parkColdExperts: opts.park ?? true,
      timingDefence: false,
    });
    return {
      rt,
      residency,
      prefetcher,
      registry,
      store: () => store!,
      close: async () => {
        await prefetcher.close();
        await rt.close();
        await residency.close();
      },
    };
  }

  const seq = (rt: ModelRuntime, tenantId: string, i: number, tiers: number): SequenceSpec => ({
    id: `${tenantId}-s${i}`,
    tenantId,
    promptTokens: rt.tokenizer.encode(`prompt ${i} of ${tenantId}, a little longer`),
    routingSeed: BigInt(77 + i),
    tierIds: rt.tiers.slice(0, tiers).map((t) => t.id),
    temperature: i % 2 === 0 ? 0 : 0.8,
    maxTokens: 12,
  });

  /** Runs to the end (waiting for loads and, when asked, for prefetches between steps); counts parks. */
  async function run(r: Rig, specs: SequenceSpec[], settlePrefetch = true) {
    const batch = r.rt.createBatch();
    specs.forEach((s) => batch.add(s));
    const out = new Map<string, StepOutput[]>();
    const parks = new Map<string, number>(specs.map((s) => [s.id, 0]));
    for (;;) {
      const step = await batch.step();
      for (const o of step) out.set(o.id, [...(out.get(o.id) ?? []), o]);
      for (const s of specs) if (batch.waiting(s.id) === "load") parks.set(s.id, parks.get(s.id)! + 1);
      if (settlePrefetch) await r.prefetcher.idle();
      if (specs.every((s) => out.get(s.id)?.some((o) => o.finished))) break;
      if (step.length > 0) continue;
      await batch.whenReady();
      if (settlePrefetch) await r.prefetcher.idle();
    }
    await r.prefetcher.idle();
    const tokens = new Map([...out].map(([id, o]) => [id, o.map((x) => x.tokenId)]));
    return { tokens, parks };
  }

  async function metric(registry: Registry, name: string) {
    const got = await registry.getSingleMetric(name)!.get();
    return got.values.map((v) => ({ labels: v.labels, value: v.value }));
  }

  it("prefetches only tiers of each sequence's TierSet, counted per (tenant, tier)", async () => {
    const r = await rig();
    try {
      const rt = r.rt;
      // A: hot tier only; B: the first two tiers
      await run(r, [seq(rt, "A", 0, 1), seq(rt, "A", 1, 1), seq(rt, "B", 2, 2)]);
      const [a, b] = [r.residency.tenantFigures("A"), r.residency.tenantFigures("B")];
      expect(Object.keys(a.prefetchBytesByTier)).toEqual([rt.tiers[0].id]);
      expect(a.prefetchBytesByTier[rt.tiers[0].id]).toBeGreaterThan(0);
      for (const tier of Object.keys(b.prefetchBytesByTier))
        expect(rt.tiers.slice(0, 2).map((t) => t.id)).toContain(tier);
      const series = await metric(r.registry, "lite_prefetch_bytes_total");
      expect(series.length).toBeGreaterThan(0);
      for (const s of series) {
        const allowed = s.labels.tenant === "A" ? 1 : 2;
        expect(rt.tiers.slice(0, allowed).map((t) => t.id)).toContain(s.labels.tier);
      }
      // nothing of a tier outside a tenant's TierSet is charged to it
      for (const e of r.residency.resident()) {
        const tier = e.id.split("|")[1].split("/")[0];
        if (tier !== rt.tiers[0].id) expect(e.warmUsers).not.toContain("A");
        if (![rt.tiers[0].id, rt.tiers[1].id].includes(tier)) expect(e.warmUsers).not.toContain("B");
      }
      // a request naming an expert outside its TierSet (a bug upstream) fetches nothing
      const restricted = rt.expertRefs(rt.tiers[rt.tiers.length - 1].id)[1][0];
      r.store().prefetch!({
        tenantId: "A",
        sequenceId: "A-x",
        tierIds: new Set([rt.tiers[0].id]),
        experts: [restricted],
        live: () => true,
      });
      expect(r.prefetcher.queued).toBe(0);
      await r.prefetcher.idle();
      expect(r.residency.levelOf(r.store(), restricted)).toBe("COLD");
      expect(r.prefetcher.usage.bytesOf("A", "A-x")).toEqual({});
    } finally {
      await r.close();
    }
  });

  it("same tokens with prefetch on and off (parking; and waiting for loads with room for one layer, evicting)", async () => {
    const specs = (rt: ModelRuntime) => [seq(rt, "A", 0, 2), seq(rt, "B", 1, 3), seq(rt, "C", 2, 4)];
    // one layer's experts, all tiers: each layer of the waiting step evicts the previous one's
    const layers = m.runtime.manifest.architecture.layers;
    const oneLayer = Math.max(
      ...Array.from({ length: layers }, (_, l) =>
        m.runtime.tiers.reduce((n, t) => n + m.runtime.expertRefs(t.id)[l].reduce((k, x) => k + x.file.bytes, 0), 0),
      ),
    );
    const results = [];
    for (const [prefetch, capacityBytes, park] of [
      [false, undefined, true],
      [true, undefined, true],
      [false, oneLayer, false],
      [true, oneLayer, false],
    ] as const) {
      const r = await rig({ prefetch, capacityBytes, park });
      try {
        const { tokens } = await run(r, specs(r.rt), false);
        results.push(tokens);
        const prefetched = r.residency.figures().reduce((n, f) => n + Object.keys(f.prefetchBytesByTier).length, 0);
        if (!prefetch) expect(prefetched).toBe(0);
        else if (park) expect(prefetched).toBeGreaterThan(0);
      } finally {
        await r.close();
      }
    }
    for (const r of results.slice(1)) expect(r).toEqual(results[0]);
    expect([...results[0].values()].every((t) => t.length > 0)).toBe(true);
  });

  it("a sequence whose next layer was prefetched does not park on it: fewer parks than without prefetch", async () => {
    const parksOf = async (prefetch: boolean) => {
      const r = await rig({ prefetch });
      try {
        const s = { ...seq(r.rt, "A", 0, 1), promptTokens: r.rt.tokenizer.encode("x"), maxTokens: 6 };
        const { parks, tokens } = await run(r, [s]);
        return { parks: parks.get(s.id)!, tokens: tokens.get(s.id)!, figures: r.residency.tenantFigures("A") };
      } finally {
        await r.close();
      }
    };
    const off = await parksOf(false);
    const on = await parksOf(true);
    expect(on.tokens).toEqual(off.tokens);
    // without prefetch the first token parks on layer 0, then again on layer 1
    expect(off.parks).toBeGreaterThanOrEqual(2);
    expect(on.parks).toBeLessThan(off.parks);
    expect(on.figures.prefetchUsed).toBeGreaterThan(0);
  });

  it("the token bucket at its limit: one second of prefetchBytesPerSecond, then throttled until it refills", async () => {
    const clock = new ManualClock(0);
    const refs = m.tierRefs(0);
    const size = refs[0].file.bytes;
    const same = refs.filter((x) => x.file.bytes === size);
    expect(same.length).toBeGreaterThanOrEqual(5);
    const r = await rig({ clock, quotas: { A: { weight: 1, prefetchBytesPerSecond: 2 * size } } });
    try {
      const ask = (experts: ExpertRef[], sequenceId = "A-q") =>
        r.store().prefetch!({
          tenantId: "A",
          sequenceId,
          tierIds: new Set([r.rt.tiers[0].id]),
          experts: experts.map((x) => r.rt.expertRefs(x.tierId)[x.layer][x.group * 4 + x.expert]),
          live: () => true,
        });
      ask(same.slice(0, 5));
      await r.prefetcher.idle();
      let f = r.residency.tenantFigures("A");
      expect(f.prefetchBytesByTier).toEqual({ [r.rt.tiers[0].id]: 2 * size });
      expect(f.prefetchThrottled).toBe(3);
      // half a second: one expert's worth
      clock.advance(500);
      ask(same.slice(2, 5));
      await r.prefetcher.idle();
      f = r.residency.tenantFigures("A");
      expect(f.prefetchBytesByTier[r.rt.tiers[0].id]).toBe(3 * size);
      expect(f.prefetchThrottled).toBe(5);
      // a full second more: the bucket holds two experts again, never more
      clock.advance(5000);
      ask(same.slice(3, 5));
      await r.prefetcher.idle();
      f = r.residency.tenantFigures("A");
      expect(f.prefetchBytesByTier[r.rt.tiers[0].id]).toBe(5 * size);
      expect(await metric(r.registry, "lite_prefetch_throttled_total")).toEqual([
        { labels: { tenant: "A" }, value: 5 },
      ]);
      expect(r.prefetcher.usage.bytesOf("A", "A-q")).toEqual({ [r.rt.tiers[0].id]: 5 * size });
      // prefetchBytesPerSecond 0: nothing is ever prefetched for the tenant
      const zero = await rig({ clock, quotas: { Z: { weight: 1, prefetchBytesPerSecond: 0 } } });
      try {
        zero.store().prefetch!({
          tenantId: "Z",
          sequenceId: "Z-q",
          tierIds: new Set([zero.rt.tiers[0].id]),
          experts: zero.rt.expertRefs(zero.rt.tiers[0].id)[0].slice(0, 2),
          live: () => true,
        });
        await zero.prefetcher.idle();
        expect(zero.residency.tenantFigures("Z")).toMatchObject({ prefetchBytesByTier: {}, prefetchThrottled: 2 });
      } finally {
        await zero.close();
      }
    } finally {
      await r.close();
    }
  });

  it("PREFETCH_BYTES and the prefetch series are the requesting tenant's only (cross-tenant)", async () => {
    const r = await rig();
    try {
      const rt = r.rt;
      const a = seq(rt, "A", 0, 2);
      const b = seq(rt, "B", 1, 2);
      await run(r, [a, b]);
      const usageA = r.prefetcher.usage.bytesOf("A", a.id);
      const usageB = r.prefetcher.usage.bytesOf("B", b.id);
      expect(Object.values(usageA).reduce((x, y) => x + y, 0)).toBeGreaterThan(0);
      // another tenant naming A's sequence reads nothing, and cannot settle it
      expect(r.prefetcher.usage.bytesOf("B", a.id)).toEqual({});
      r.prefetcher.usage.settle("B", a.id);
      expect(r.prefetcher.usage.bytesOf("A", a.id)).toEqual(usageA);
      // each tenant's usage is what its figures count (all its prefetches were for that sequence)
      expect(usageA).toEqual(r.residency.tenantFigures("A").prefetchBytesByTier);
      expect(usageB).toEqual(r.residency.tenantFigures("B").prefetchBytesByTier);
      const series = await metric(r.registry, "lite_prefetch_bytes_total");
      const sum = (t: string) => series.filter((s) => s.labels.tenant === t).reduce((n, s) => n + s.value, 0);
      expect(sum("A")).toBe(Object.values(usageA).reduce((x, y) => x + y, 0));
      expect(sum("B")).toBe(Object.values(usageB).reduce((x, y) => x + y, 0));
      r.prefetcher.usage.settle("A", a.id);
      expect(r.prefetcher.usage.bytesOf("A", a.id)).toEqual({});
    } finally {
      await r.close();
    }
  });

  it("whether another tenant holds the expert never changes a tenant's prefetch (full cache or not)", async () => {
    const refs = m.tierRefs(0);
    const size = refs[0].file.bytes;
    const [x, y] = refs.filter((r) => r.file.bytes === size);
    const outcome = async (capacityExperts: number, bHolds: ExpertRef) => {
      const quotas = fixedQuotas({});
      const residency = new ExpertResidency({
        hotCapacityBytes: capacityExperts * size,
        warmCapacityBytes: capacityExperts * size,
        quotas,
      });
      const prefetcher = new ExpertPrefetcher(residency, quotas);
      const store = new TieredExpertStore(residency, m.ctx, prefetcher);
      try {
        await store.load(bHolds, new Set(["B"]));
        store.prefetch!({
          tenantId: "A",
          sequenceId: "A-1",
          tierIds: new Set([x.tierId]),
          experts: [x],
          live: () => true,
        });
        await prefetcher.idle();
        const f = residency.tenantFigures("A");
        return {
          bytes: f.prefetchBytesByTier,
          throttled: f.prefetchThrottled,
          usage: prefetcher.usage.bytesOf("A", "A-1"),
        };
      } finally {
        await prefetcher.close();
        await store.close();
        await residency.close();
      }
    };
    // room for one expert: B holds it or another, A's prefetch does nothing either way
    expect(await outcome(1, x)).toEqual({ bytes: {}, throttled: 0, usage: {} });
    expect(await outcome(1, y)).toEqual({ bytes: {}, throttled: 0, usage: {} });
    // room for two: A's prefetch counts the expert's bytes either way (joining B's, or reading it)
    const counted = { bytes: { [x.tierId]: size }, throttled: 0, usage: { [x.tierId]: size } };
    expect(await outcome(2, x)).toEqual(counted);
    expect(await outcome(2, y)).toEqual(counted);
  });

  it("a prefetched expert not used by the end of the epoch after its prefetch's is waste (counted once)", async () => {
    const [x, y] = m.tierRefs(0);
    const quotas = fixedQuotas({});
    const residency = new ExpertResidency({
      hotCapacityBytes: 1 << 24,
      warmCapacityBytes: 1 << 24,
      quotas,
      epochUses: 2,
    });
    const prefetcher = new ExpertPrefetcher(residency, quotas);
    const store = new TieredExpertStore(residency, m.ctx, prefetcher);
    try {
      store.prefetch!({
        tenantId: "A",
        sequenceId: "A-e",
        tierIds: new Set([x.tierId]),
        experts: [x],
        live: () => true,
      });
      await prefetcher.idle();
      expect(residency.tenantFigures("A").prefetchBytesByTier).toEqual({ [x.tierId]: x.file.bytes });
      await store.load(y, new Set(["B"]));
      const useY = () => store.acquire(y, new Set(["B"]))!.release();
      for (let i = 0; i < 3; i++) useY(); // epoch 1: the prefetch's epoch (0) is still the previous one
      expect(residency.tenantFigures("A").prefetchWastedBytes).toBe(0);
      useY(); // epoch 2 begins: epoch 0's prefetch went unused
      expect(residency.tenantFigures("A").prefetchWastedBytes).toBe(x.file.bytes);
      for (let i = 0; i < 4; i++) useY();
      expect(residency.tenantFigures("A")).toMatchObject({ prefetchWastedBytes: x.file.bytes, prefetchUsed: 0 });
      expect(residency.tenantFigures("B").prefetchWastedBytes).toBe(0);
    } finally {
      await prefetcher.close();
      await store.close();
      await residency.close();
    }
  });

  it("prefetched bytes never used are counted as waste when evicted, for the prefetching tenant only", async () => {
    const refs = m.tierRefs(0);
    const size = refs[0].file.bytes;
    const same = refs.filter((x) => x.file.bytes === size);
    // room for two experts: A prefetches two, then B's demand loads evict them
    const r = await rig({ capacityBytes: 2 * size });
    try {
      const rt = r.rt;
      const live = (x: ExpertRef) => rt.expertRefs(x.tierId)[x.layer][x.group * 4 + x.expert];
      r.store().prefetch!({
        tenantId: "A",
        sequenceId: "A-w",
        tierIds: new Set([rt.tiers[0].id]),
        experts: same.slice(0, 3).map(live),
        live: () => true,
      });
      await r.prefetcher.idle();
      // the third did not fit: a prefetch evicts nothing anyone pays for (A's own included)
      expect(r.residency.tenantFigures("A").prefetchBytesByTier).toEqual({ [rt.tiers[0].id]: 2 * size });
      expect(r.residency.levelOf(r.store(), live(same[2]))).toBe("COLD");
      expect(r.residency.tenantFigures("A").prefetchWastedBytes).toBe(0);
      // B's load takes A's least valuable entry (A is over its weighted share): wasted
      await r.store().load(live(same[2]), new Set(["B"]));
      expect(r.residency.tenantFigures("A").prefetchWastedBytes).toBe(size);
      // A uses the one left: not waste, even when it goes later
      const kept = same
        .slice(0, 2)
        .map(live)
        .find((x) => r.residency.levelOf(r.store(), x) === "HOT")!;
      (await r.store().get(kept, new Set(["A"]))).release();
      expect(r.residency.tenantFigures("A").prefetchUsed).toBe(1);
      // A's own load (A over its share) evicts it
      await r.store().load(live(same[3]), new Set(["A"]));
      expect(r.residency.levelOf(r.store(), kept)).toBe("COLD");
      expect(r.residency.tenantFigures("A").prefetchWastedBytes).toBe(size);
      expect(r.residency.tenantFigures("B")).toMatchObject({ prefetchWastedBytes: 0, prefetchBytesByTier: {} });
      expect(await metric(r.registry, "lite_prefetch_wasted_bytes_total")).toEqual([
        { labels: { tenant: "A" }, value: size },
      ]);
    } finally {
      await r.close();
    }
  });
});
