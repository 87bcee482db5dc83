import { loadModel, type ModelRuntime, type SequenceSpec } from "@lite/model";
import { ExpertResidency } from "./expert-residency";
import { RESIDENCIES } from "./cache-entry";
import { TieredExpertStore } from "./tiered-expert-store";
import { openTinyCacheModel, type TinyCacheModel } from "./testing/tiny-cache.fixture";
import { totalExpertBytes } from "./working-set";

/**
 * The cache as a model runtime's store: every sequence produces the tokens it produces with
 * the plain store that keeps everything, in the step that waits for loads (with capacities
 * of one layer's experts, so each layer evicts the previous one's) and in the worker's step
 * that parks sequences on cold experts.
 */
describe("TieredExpertStore in a model runtime", () => {
  let m: TinyCacheModel;
  let expected: Map<string, number[]>;
  beforeAll(async () => {
    m = await openTinyCacheModel();
    const plain = await loadModel({ modelDir: m.modelDir, modelName: "tiny" });
    expected = await run(plain);
    await plain.close();
  });
  afterAll(() => m.cleanup());

  const specs = (rt: ModelRuntime): SequenceSpec[] =>
    ["A", "B", "C"].map((tenantId, i) => ({
      id: `s${i}`,
      tenantId,
      promptTokens: rt.tokenizer.encode(`prompt of ${tenantId} number ${i}`),
      routingSeed: BigInt(1000 + i),
      tierIds: rt.tiers.slice(0, 2 + i).map((t) => t.id),
      temperature: i === 0 ? 0 : 0.8,
      maxTokens: 24,
    }));

  /** Runs to the end; with parking, a step in which every sequence waits waits for one. */
  async function run(rt: ModelRuntime): Promise<Map<string, number[]>> {
    const batch = rt.createBatch();
    const all = specs(rt);
    all.forEach((s) => batch.add(s));
    const out = new Map<string, number[]>();
    for (;;) {
      const step = await batch.step();
      for (const o of step) out.set(o.id, [...(out.get(o.id) ?? []), o.tokenId]);
      if (step.length > 0) continue;
      if (!all.some((s) => batch.waiting(s.id))) break;
      await batch.whenReady();
    }
    return out;
  }

  /** The bytes of the largest layer's experts, all tiers: what one layer of a prompt may need at once. */
  function largestLayerBytes(rt: ModelRuntime): number {
    const layers = rt.manifest.architecture.layers;
    const perLayer = Array.from({ length: layers }, (_, l) =>
      rt.tiers.reduce((sum, t) => sum + rt.expertRefs(t.id)[l].reduce((s, r) => s + r.file.bytes, 0), 0),
    );
    return Math.max(...perLayer);
  }

  async function runWithCache(capacityBytes: number, park: boolean) {
    const quota = { hotMemoryBytes: capacityBytes, warmMemoryBytes: capacityBytes, weight: 1 };
    const residency = new ExpertResidency({
      hotCapacityBytes: capacityBytes,
      warmCapacityBytes: capacityBytes,
      quotas: { quotaOf: () => quota },
    });
    const rt = await loadModel({
      modelDir: m.modelDir,
      modelName: "tiny",
      expertStore: (ctx) => new TieredExpertStore(residency, ctx),
      parkColdExperts: park,
      timingDefence: false,
    });
    try {
      const tokens = await run(rt);
      for (const level of RESIDENCIES) {
        expect(residency.usedBytes(level)).toBeLessThanOrEqual(capacityBytes);
        for (const bytes of residency.charges(level).values()) expect(bytes).toBeLessThanOrEqual(capacityBytes);
      }
      return { tokens, figures: residency.figures(), tiers: rt.tiers.map((t) => t.id) };
    } finally {
      await rt.close();
      await residency.close();
    }
  }

  it("waiting for loads, with room for one layer's experts: same tokens, experts evicted layer after layer", async () => {
    const capacity = largestLayerBytes(m.runtime);
    expect(capacity).toBeLessThan(totalExpertBytes(m.runtime));
    const r = await runWithCache(capacity, false);
    expect(r.tokens).toEqual(expected);
    expect(r.figures.map((f) => f.tenantId)).toEqual(["A", "B", "C"]);
    expect(r.figures.reduce((sum, f) => sum + f.evictionsCaused, 0)).toBeGreaterThan(0);
    // tenant A's TierSet is t0+t1: nothing of t2 or t3 was loaded on its behalf
    expect(Object.keys(r.figures[0].loadsByTier).sort()).toEqual(r.tiers.slice(0, 2));
  });

  it("parking sequences on cold experts (the worker's step): same tokens", async () => {
    const r = await runWithCache(totalExpertBytes(m.runtime), true);
    expect(r.tokens).toEqual(expected);
    expect(r.figures.every((f) => f.loads > 0 && f.misses > 0)).toBe(true);
  });
});
