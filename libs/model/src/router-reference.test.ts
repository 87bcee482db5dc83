import fc from "fast-check";
import { HserRouter, tieBreakHash, type RoutedExpert, type RouterTier } from "./hser-router";

/**
 * HserRouter.route runs for every row at every layer of every step, so it is written to
 * allocate little. This holds it to the plain definition it replaced, kept here as the
 * reference: a full sort of each candidate list by (quantised score, tie-break hash, column),
 * softmaxes over the kept values. Every routing decision, gate bit for bit, must agree:
 * tokens, expert calls and bills depend on them.
 */
function referenceRoute(
  tiers: readonly RouterTier[],
  tierTopK: number,
  fractionBits: number,
  logits: Float32Array,
  offset: number,
  active: readonly boolean[],
  seed: bigint,
  layer: number,
): RoutedExpert[] {
  const scale = 2 ** fractionBits;
  const topK = (columns: number[], k: number): number[] => {
    const q = (col: number) => Math.round(logits[offset + col] * scale);
    return [...columns]
      .sort((a, b) => {
        const d = q(b) - q(a);
        if (d !== 0) return d;
        const ha = tieBreakHash(seed, layer, a);
        const hb = tieBreakHash(seed, layer, b);
        if (ha !== hb) return ha > hb ? -1 : 1;
        return a - b;
      })
      .slice(0, Math.min(k, columns.length));
  };
  const softmax = (values: number[]) => {
    const max = Math.max(...values);
    const e = values.map((v) => Math.exp(v - max));
    let total = 0;
    for (const x of e) total += x;
    return e.map((x) => x / total);
  };
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const candidates = tiers.filter((t) => active[t.index]);
  const topTiers = topK(
    candidates.map((t) => t.columns.tier),
    tierTopK,
  ).map((col) => candidates.find((t) => t.columns.tier === col)!);
  const tierGates = softmax(topTiers.map((t) => logits[offset + t.columns.tier]));
  const out: RoutedExpert[] = [];
  topTiers.forEach((t, ti) => {
    const topGroups = topK(
      range(t.groups).map((g) => t.columns.groups + g),
      t.groupTopK,
    );
    const groupGates = softmax(topGroups.map((c) => logits[offset + c]));
    topGroups.forEach((gc, gi) => {
      const group = gc - t.columns.groups;
      const first = t.columns.experts + group * t.expertsPerGroup;
      const topExperts = topK(
        range(t.expertsPerGroup).map((e) => first + e),
        t.expertTopK,
      );
      const expertGates = softmax(topExperts.map((c) => logits[offset + c]));
      topExperts.forEach((ec, ei) =>
        out.push({ tier: t.index, group, expert: ec - first, gate: tierGates[ti] * groupGates[gi] * expertGates[ei] }),
      );
    });
  });
  return out.sort((a, b) => a.tier - b.tier || a.group - b.group || a.expert - b.expert);
}

/** Tiers laid out one after another in the router's columns: tier score, group scores, expert scores. */
function layout(shapes: { groups: number; experts: number; groupTopK: number; expertTopK: number }[]): RouterTier[] {
  let col = 0;
  return shapes.map((s, index) => {
    const columns = { tier: col, groups: col + 1, experts: col + 1 + s.groups };
    col = columns.experts + s.groups * s.experts;
    return {
      index,
      groups: s.groups,
      expertsPerGroup: s.experts,
      groupTopK: s.groupTopK,
      expertTopK: s.expertTopK,
      columns,
    };
  });
}

const tierShape = fc.record({
  groups: fc.integer({ min: 1, max: 4 }),
  experts: fc.integer({ min: 1, max: 6 }),
  groupTopK: fc.integer({ min: 1, max: 4 }),
  expertTopK: fc.integer({ min: 1, max: 6 }),
});

describe("HserRouter against the sort-based reference", () => {
  it("routes every row exactly as the reference: the same experts, in the same order, with bit-identical gates", () => {
    fc.assert(
      fc.property(
        fc.array(tierShape, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 2, max: 20 }),
        // few distinct values, so that quantised scores tie often; and some arbitrary ones
        fc.array(fc.oneof(fc.constantFrom(0, 0.5, -1.25, 3), fc.float({ min: -8, max: 8, noNaN: true })), {
          minLength: 120,
          maxLength: 120,
        }),
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.integer({ min: 0, max: 7 }),
        fc.boolean(),
        (shapes, tierTopK, fractionBits, values, active, seed, layer, reversed) => {
          // the router's tier list need not be in index order
          const tiers = reversed ? layout(shapes).reverse() : layout(shapes);
          const width = Math.max(...tiers.map((t) => t.columns.experts + t.groups * t.expertsPerGroup));
          const logits = Float32Array.from(values.slice(0, width));
          const on = active.map((a, i) => a || i === 0);
          const router = new HserRouter(tiers, tierTopK, fractionBits);
          expect(router.route(logits, 0, on, seed, layer)).toEqual(
            referenceRoute(tiers, tierTopK, fractionBits, logits, 0, on, seed, layer),
          );
        },
      ),
      { numRuns: 3000 },
    );
  });
});
