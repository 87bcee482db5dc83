import { loadModel, type ModelRuntime, type SequenceSpec, type StepOutput } from "@lite/model";
import { ExpertResidency } from "./expert-residency";
import { RESIDENCIES } from "./cache-entry";
import { TieredExpertStore } from "./tiered-expert-store";
import { openTinyCacheModel, type TinyCacheModel } from "./testing/tiny-cache.fixture";
import { tokenWorkingSetBytes } from "./working-set";

/**
 * The cache as a model runtime's store: with capacities exactly one token's working set
 * (so experts are evicted and reloaded while decoding) and per-tenant quotas, every
 * sequence produces the tokens it produces with the plain store that keeps everything.
 */
describe("TieredExpertStore in a model runtime", () => {
  let m: TinyCacheModel;
  beforeAll(async () => {
    m = await openTinyCacheModel();
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

  async function run(rt: ModelRuntime): Promise<Map<string, number[]>> {
    const batch = rt.createBatch();
    specs(rt).forEach((s) => batch.add(s));
    const out = new Map<string, number[]>();
    for (;;) {
      const step: StepOutput[] = await batch.step();
      if (step.length === 0) break;
      for (const o of step) out.set(o.id, [...(out.get(o.id) ?? []), o.tokenId]);
    }
    return out;
  }

  it("gives the same tokens as the plain store while evicting, within capacity and quotas", async () => {
    const plain = await loadModel({ modelDir: m.modelDir, modelName: "tiny" });
    const expected = await run(plain);
    await plain.close();

    const need = tokenWorkingSetBytes(m.runtime);
    const quota = { hotMemoryBytes: need, warmMemoryBytes: need, weight: 1 };
    const residency = new ExpertResidency({
      hotCapacityBytes: need,
      warmCapacityBytes: need,
      quotas: { quotaOf: () => quota },
    });
    residency.assertFits("tiny", need);
    const rt = await loadModel({
      modelDir: m.modelDir,
      modelName: "tiny",
      expertStore: (ctx) => new TieredExpertStore(residency, ctx),
    });
    try {
      expect(await run(rt)).toEqual(expected);
      const figures = residency.figures();
      expect(figures.map((f) => f.tenantId)).toEqual(["A", "B", "C"]);
      expect(figures.reduce((sum, f) => sum + f.evictionsCaused, 0)).toBeGreaterThan(0);
      for (const level of RESIDENCIES) {
        expect(residency.usedBytes(level)).toBeLessThanOrEqual(need);
        for (const bytes of residency.charges(level).values()) expect(bytes).toBeLessThanOrEqual(need);
      }
      // tenant A's TierSet is t0+t1: nothing of t2 or t3 was loaded on its behalf
      expect(Object.keys(figures[0].loadsByTier).sort()).toEqual([rt.tiers[0].id, rt.tiers[1].id]);
    } finally {
      await rt.close();
      await residency.close();
    }
  });
});
