import {
  loadModel,
  resolveModeTiers,
  type ExpertRef,
  type ModelRuntime,
  type SequenceSpec,
  type StepOutput,
} from "@lite/model";
import { ExpertResidency } from "./expert-residency";
import { RESIDENCIES } from "./cache-entry";
import type { TenantCacheQuota } from "./cache-quota";
import { TieredExpertStore } from "./tiered-expert-store";
import { openTinyCacheModel, type TinyCacheModel } from "./testing/tiny-cache.fixture";

/**
 * A parked sequence under a tenant's hotMemoryBytes that holds one layer's experts of its
 * prompt but not every layer's at once (the livelock of issue 10: a parked prefill retried
 * its whole pass from layer 0, so all its experts had to be HOT together, and its own loads
 * evicted each other forever). It resumes at the layer where it parked, so it finishes with
 * the tokens of a run that never parked. A prompt one layer of which cannot fit is refused,
 * naming the limit. Each run is bounded by a count of rounds (step, or wait for a load), not
 * by time: a livelock fails the count.
 */
jest.setTimeout(180_000);

describe("parked sequences under a tenant's hotMemoryBytes", () => {
  let m: TinyCacheModel;
  let plain: ModelRuntime;
  let byKey: Map<string, ExpertRef>;
  const ROUNDS = 400;

  beforeAll(async () => {
    m = await openTinyCacheModel();
    plain = await loadModel({ modelDir: m.modelDir, modelName: "tiny" });
    byKey = new Map(m.refs.map((r) => [`${r.tierId}/g${r.group}/e${r.expert}@${r.layer}`, r]));
  });
  afterAll(async () => {
    await plain.close();
    await m.cleanup();
  });

  const deep = (rt: ModelRuntime, id: string, tenantId: string, prompt: string, seed: bigint): SequenceSpec => ({
    id,
    tenantId,
    promptTokens: rt.tokenizer.encode(prompt),
    routingSeed: seed,
    tierIds: resolveModeTiers(rt.tiers, "MAX"),
    temperature: 0.7,
    maxTokens: 8,
  });

  /** Runs to the end or for ROUNDS rounds; `rounds` tells which. */
  async function run(rt: ModelRuntime, specs: SequenceSpec[]) {
    const batch = rt.createBatch();
    specs.forEach((s) => batch.add(s));
    const out = new Map<string, StepOutput[]>(specs.map((s) => [s.id, []]));
    const done = () => specs.every((s) => out.get(s.id)!.some((o) => o.finished));
    let rounds = 0;
    for (; rounds < ROUNDS && !done(); rounds++) {
      const step = await batch.step();
      step.forEach((o) => out.get(o.id)!.push(o));
      // nothing to step now: wait for a load (a load may also settle before the step returns)
      if (step.length === 0) await batch.whenReady();
    }
    for (const s of specs) batch.remove(s.id);
    return { out, rounds };
  }

  /** Bytes of the distinct experts each layer of the output's step used. */
  const layerBytes = (o: StepOutput): number[] =>
    o.experts.map((keys, layer) =>
      keys.reduce((sum, k) => {
        const [tier, g, e] = k.split("/");
        return sum + byKey.get(`${tier}/${g}/${e}@${layer}`)!.file.bytes;
      }, 0),
    );

  async function parkingRuntime(quotas: Record<string, TenantCacheQuota>) {
    const residency = new ExpertResidency({
      hotCapacityBytes: 1 << 30,
      warmCapacityBytes: 1 << 30,
      quotas: { quotaOf: (t) => quotas[t] ?? { weight: 1 } },
    });
    const rt = await loadModel({
      modelDir: m.modelDir,
      modelName: "tiny",
      expertStore: (ctx) => new TieredExpertStore(residency, ctx),
      parkColdExperts: true,
      timingDefence: false,
    });
    return { rt, residency, close: async () => (await rt.close(), await residency.close()) };
  }

  const tokensOf = (o: StepOutput[]) => o.map((x) => x.tokenId);
  const strip = (o: StepOutput[]) =>
    o.map(({ tokenId, index, experts, expertCalls }) => ({ tokenId, index, experts, expertCalls }));

  it("a prompt whose layers fit one at a time, not all at once: it finishes with its unparked tokens", async () => {
    const prompt = "a long prompt whose prefill routes to most experts of every layer";
    const ref = (await run(plain, [deep(plain, "a", "A", prompt, 7n)])).out.get("a")!;
    const perLayer = layerBytes(ref[0]);
    const oneLayer = Math.max(...perLayer);
    const allLayers = perLayer.reduce((s, b) => s + b, 0);
    // the prefill needs more than the quota across layers, within it layer by layer
    expect(allLayers).toBeGreaterThan(oneLayer * 1.5);
    const { rt, residency, close } = await parkingRuntime({
      A: { hotMemoryBytes: oneLayer, warmMemoryBytes: oneLayer, weight: 1 },
    });
    try {
      const { out, rounds } = await run(rt, [deep(rt, "a", "A", prompt, 7n)]);
      expect(rounds).toBeLessThan(ROUNDS);
      expect(strip(out.get("a")!)).toEqual(strip(ref));
      for (const level of RESIDENCIES) expect(residency.charges(level).get("A") ?? 0).toBeLessThanOrEqual(oneLayer);
      expect(residency.tenantFigures("A").evictionsSuffered).toBeGreaterThan(0);
    } finally {
      await close();
    }
  });

  it("batched with an unbounded tenant and a second sequence of its own: every sequence gives its tokens alone", async () => {
    const prompts = ["the first tenant's long prompt, routed far and wide", "another one of its own", "b's words"];
    const specs = (rt: ModelRuntime) => [
      deep(rt, "a1", "A", prompts[0], 11n),
      deep(rt, "a2", "A", prompts[1], 12n),
      deep(rt, "b", "B", prompts[2], 13n),
    ];
    const ref = new Map<string, StepOutput[]>();
    for (const s of specs(plain)) ref.set(s.id, (await run(plain, [s])).out.get(s.id)!);
    const oneLayer = Math.max(...[...ref.values()].flatMap((o) => layerBytes(o[0])));
    const { rt, residency, close } = await parkingRuntime({
      A: { hotMemoryBytes: oneLayer, warmMemoryBytes: oneLayer, weight: 1 },
    });
    try {
      const { out, rounds } = await run(rt, specs(rt));
      expect(rounds).toBeLessThan(ROUNDS);
      for (const [id, o] of ref) expect({ id, o: strip(out.get(id)!) }).toEqual({ id, o: strip(o) });
      // the session creations went through the load governor, each charged to its loaders
      const governor = residency.loadGovernor;
      expect(governor.chargedMs("A")).toBeGreaterThan(0);
      expect(governor.chargedMs("B")).toBeGreaterThan(0);
      expect(governor.chargedMs("C")).toBe(0);
    } finally {
      await close();
    }
  });

  it("a prompt one layer of which cannot be HOT at once within hotMemoryBytes ends ERROR naming the limit, no loop", async () => {
    const prompt = "a long prompt whose prefill routes to most experts of every layer";
    const ref = (await run(plain, [deep(plain, "a", "A", prompt, 7n)])).out.get("a")!;
    const oneLayer = Math.max(...layerBytes(ref[0]));
    const largest = Math.max(...m.refs.map((r) => r.file.bytes));
    const quota = Math.max(largest, Math.floor(oneLayer / 2));
    expect(quota).toBeLessThan(oneLayer);
    const { rt, close } = await parkingRuntime({
      A: { hotMemoryBytes: quota, warmMemoryBytes: 1 << 30, weight: 1 },
    });
    try {
      const { out, rounds } = await run(rt, [deep(rt, "a", "A", prompt, 7n)]);
      expect(rounds).toBeLessThan(ROUNDS);
      const got = out.get("a")!;
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ index: 0, tokenId: -1, finished: true, finishReason: "ERROR" });
      expect(got[0].error).toMatch(/^QUOTA_EXCEEDED: .*layer \d+.* bytes.*hotMemoryBytes of tenant A \(\d+\)/);
      expect(tokensOf(got)).toEqual([-1]);
    } finally {
      await close();
    }
  });
});
