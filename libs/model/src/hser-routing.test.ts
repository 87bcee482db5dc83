/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
import { HserRouter, type RouterTier } from "./hser-router";
import type { ModelRuntime } from "./model-runtime";
import { resolveModeTiers, type TierMode } from "./mode-tiers";
import { Sfc32 } from "./seeded-random";
import { buildTinyModel, openTiny, runToEnd, spec, type TinyModel } from "./testing/tiny-model.fixture";

/** Distinct tier ids a run activated, from its per-layer expert ids `<tier>/g<g>/e<e>`. */
function tiersUsed(experts: string[][][]): Set<string> {
  return new Set(experts.flat(2).map((id) => id.split("/")[0]));
}

function variedText(seed: number, length: number): string {
  const r = new Sfc32(seed);
  let s = "";
  for (let i = 0; i < length; i++) s += String.fromCharCode(32 + (r.nextU32() % 95));
  return s;
}

describe("HSER routing in the model", () => {
  let m: TinyModel;
  let rt: ModelRuntime;
  beforeAll(async () => {
    m = buildTinyModel();
    rt = await openTiny(m);
  });
  afterAll(async () => {
    await rt.close();
    m.cleanup();
  });

  async function experts(mode: TierMode | string[], runs: number): Promise<string[][][]> {
    const tierIds = Array.isArray(mode) ? mode : resolveModeTiers(rt.tiers, mode);
    const specs = Array.from({ length: runs }, (_, i) =>
      spec(rt, {
        id: `r${i}`,
        prompt: variedText(i + 1, 12),
        tierIds,
        routingSeed: BigInt(i * 7919),
        temperature: 0.7,
        maxTokens: 10,
      }),
    );
    const out = await runToEnd(rt, specs);
    return [...out.values()].flat().map((o) => o.experts);
  }

  it("FAST activates only hot-tier experts", async () => {
    expect([...tiersUsed(await experts("FAST", 6))]).toEqual(["tiny.t0"]);
  });

  it("DEEP reaches the cold tier, and never the restricted one", async () => {
    const used = tiersUsed(await experts("DEEP", 16));
    expect(used.has("tiny.t2")).toBe(true);
    expect(used.has("tiny.t3")).toBe(false);
  });

  it("activates the restricted tier only when the TierSet names it", async () => {
    expect(tiersUsed(await experts("MAX", 16)).has("tiny.t3")).toBe(true);
    expect([...tiersUsed(await experts(["tiny.t3"], 2))]).toEqual(["tiny.t3"]);
    expect(tiersUsed(await experts(["tiny.t0", "tiny.t1", "tiny.t2"], 16)).has("tiny.t3")).toBe(false);
  });

  it("chooses every hot-tier expert at least once over 1000 varied tokens, in every layer", async () => {
    const tierIds = resolveModeTiers(rt.tiers, "FAST");
    // 10 prompts of 99 varied bytes (+BOS) = 1000 prefilled tokens.
    const specs = Array.from({ length: 10 }, (_, i) =>
      spec(rt, { id: `p${i}`, prompt: variedText(100 + i, 99), tierIds, maxTokens: 1 }),
    );
    const out = await runToEnd(rt, specs);
    const hot = rt.tiers[0];
    const layers = rt.manifest.architecture.layers;
    for (let l = 0; l < layers - 1; l++) {
      const chosen = new Set([...out.values()].flatMap((steps) => steps[0].experts[l]));
      expect(chosen.size).toBe(hot.groups * hot.expertsPerGroup);
    }
    // Calls: each token uses groupTopK × expertTopK hot experts per layer (the prompt rows
    // the last layer does not run, forward-pass.ts unsampledRows, are counted as routed).
    const calls = [...out.values()].reduce((n, steps) => n + steps[0].expertCalls["tiny.t0"], 0);
    expect(calls).toBe(1000 * layers * 2);
    // The last layer runs a step's last row of each sequence only (the one sampled): its
    // experts are counted over 1000 decode rows (10 sequences × 100 tokens, sampled).
    const decoding = Array.from({ length: 10 }, (_, i) =>
      spec(rt, {
        id: `d${i}`,
        prompt: variedText(200 + i, 9),
        tierIds,
        temperature: 0.9,
        routingSeed: BigInt(i + 1),
        maxTokens: 100,
      }),
    );
    const decoded = await runToEnd(rt, decoding);
    const lastChosen = new Set([...decoded.values()].flatMap((steps) => steps.flatMap((o) => o.experts[layers - 1])));
    expect(lastChosen.size).toBe(hot.groups * hot.expertsPerGroup);
  });
});

describe("HserRouter", () => {
  const tiers: RouterTier[] = [
    {
      index: 0,
      groups: 2,
      expertsPerGroup: 3,
      groupTopK: 1,
      expertTopK: 2,
      columns: { tier: 0, groups: 1, experts: 3 },
    },
    {
      index: 1,
      groups: 1,
      expertsPerGroup: 4,
      groupTopK: 1,
      expertTopK: 2,
      columns: { tier: 9, groups: 10, experts: 11 },
    },
  ];
  const router = new HserRouter(tiers, 1, 16);

  it("masks tiers outside the TierSet and normalises gates to 1", () => {
    const logits = Float32Array.from({ length: 15 }, (_, i) => Math.sin(i * 1.7) * 3);
    logits[9] = 100; // tier 1 scores far higher, but is masked
    const sel = router.route(logits, 0, [true, false], 1n, 0);
    expect(sel.every((s) => s.tier === 0)).toBe(true);
    expect(sel).toHaveLength(2);
    expect(sel.reduce((a, s) => a + s.gate, 0)).toBeCloseTo(1, 12);
    expect(router.route(logits, 0, [true, true], 1n, 0).every((s) => s.tier === 1)).toBe(true);
  });

  it("breaks exact ties by the seeded hash, identically on every call", () => {
    const logits = new Float32Array(15).fill(0.5); // every score ties
    const picks = (seed: bigint) => JSON.stringify(router.route(logits, 0, [true, true], seed, 3));
    const seen = new Set<string>();
    for (let s = 0n; s < 40n; s++) {
      expect(picks(s)).toBe(picks(s));
      seen.add(picks(s));
    }
    expect(seen.size).toBeGreaterThan(3); // the seed, not the index alone, decides ties
  });

  it("treats scores closer than the quantum as ties (float noise cannot reorder experts)", () => {
    const top = (a: number, b: number) => router.topK([3, 4], Float32Array.from([0, 0, 0, a, b]), 0, 1, 5n, 0)[0];
    const tieWinner = top(1, 1);
    expect(top(1 + 2 ** -20, 1)).toBe(tieWinner);
    expect(top(1, 1 + 2 ** -20)).toBe(tieWinner);
    expect(top(1 + 2 ** -10, 1)).toBe(3);
    expect(top(1, 1 + 2 ** -10)).toBe(4);
  });
});
