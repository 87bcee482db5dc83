import { readManifest } from "./manifest-reader";
import { describeTiers, expertParams } from "./tier-description";
import { describeManifest } from "./model-registration";
import { readModelLimits } from "./model-limits";
import { writeSignedModel } from "./testing/signed-model.fixture";

describe("tier descriptions", () => {
  it("cost weight = active expert parameters per token ÷ the hot tier's; paramBytes = float32 bytes of every expert", () => {
    const m = writeSignedModel();
    try {
      const tiers = describeTiers(readManifest(m.root).manifest);
      const hot = 1 * 1 * expertParams(8, 4);
      expect(tiers.map((t) => t.costWeight)).toEqual([1, (1 * 2 * expertParams(8, 8)) / hot, expertParams(8, 8) / hot]);
      expect(tiers[1].paramBytes).toBe(BigInt(2 * 2 * 2 * expertParams(8, 8) * 4));
      expect(tiers.map((t) => [t.id, t.placement, t.restricted])).toEqual([
        ["fake.t0", "HOT", false],
        ["fake.t1", "WARM", false],
        ["fake.t2", "COLD", true],
      ]);
    } finally {
      m.cleanup();
    }
  });

  it("without a HOT tier, weights are relative to the lowest rank", () => {
    const m = writeSignedModel();
    try {
      m.resign((x) => ((x.tiers as { placement: string }[])[0].placement = "WARM"));
      const description = describeManifest(readManifest(m.root), true);
      expect(description).toMatchObject({ id: "fake", name: "fake", isDefault: true });
      expect(description.tiers[0].costWeight).toBe(1);
    } finally {
      m.cleanup();
    }
  });
});

describe("readModelLimits", () => {
  it("reads maxContextTokens and the KV shape; undefined for a missing model or a manifest without it", () => {
    const m = writeSignedModel();
    try {
      expect(readModelLimits(m.modelDir, m.modelName)).toEqual({
        maxContextTokens: 32,
        kvShape: { layers: 2, dModel: 8 },
      });
      expect(readModelLimits(m.modelDir, "absent")).toBeUndefined();
      m.resign((x) => delete (x.architecture as { maxContextTokens?: number }).maxContextTokens);
      expect(readModelLimits(m.modelDir, m.modelName)).toBeUndefined();
    } finally {
      m.cleanup();
    }
  });
});
