import { fnv1a64, u64Bytes } from "./seeded-random";

/**
 * HSER routing for one token at one layer, from one row of router logits:
 *   1. tiers: candidates are the tiers in the sequence's TierSet (others are masked out,
 *      so a restricted tier is unreachable unless named); keep the top `tierTopK`;
 *   2. groups: within each kept tier, keep its top `groupTopK` groups;
 *   3. experts: within each kept group, keep its top `expertTopK` experts;
 *   4. gate = softmax over kept tiers × softmax over the tier's kept groups × softmax over
 *      the group's kept experts, so gates over all kept experts sum to 1.
 * Top-k compares scores quantised to multiples of 2^-fractionBits (so float noise below that
 * cannot reorder experts), breaks ties by FNV-1a 64 of (seed, layer, router column), then by
 * column. Output is ordered by (tier, group, expert): the combine step sums in that order.
 */

export interface RouterTier {
  /** index into the runtime's tier list */
  index: number;
  groups: number;
  expertsPerGroup: number;
  groupTopK: number;
  expertTopK: number;
  columns: { tier: number; groups: number; experts: number };
}

export interface RoutedExpert {
  tier: number;
  group: number;
  expert: number;
  gate: number;
}

export class HserRouter {
  private readonly scale: number;

  constructor(
    private readonly tiers: readonly RouterTier[],
    private readonly tierTopK: number,
    fractionBits: number,
  ) {
    this.scale = 2 ** fractionBits;
  }

  /** Highest router column used, +1: the router output must be at least this wide. */
  get requiredWidth(): number {
    return Math.max(...this.tiers.map((t) => t.columns.experts + t.groups * t.expertsPerGroup));
  }

  /**
   * The calls (token × expert evaluations) one row makes per tier, by tier index, when they do
   * not depend on its router logits: its TierSet has at most `tierTopK` tiers, so every one
   * is kept, each with its fixed groupTopK × expertTopK experts. undefined when which tiers
   * are kept depends on the row (more tiers than tierTopK).
   */
  fixedCalls(active: readonly boolean[]): Map<number, number> | undefined {
    const kept = this.tiers.filter((t) => active[t.index]);
    if (kept.length > this.tierTopK) return undefined;
    return new Map(
      kept.map((t) => [t.index, Math.min(t.groupTopK, t.groups) * Math.min(t.expertTopK, t.expertsPerGroup)]),
    );
  }

  route(logits: Float32Array, offset: number, active: readonly boolean[], seed: bigint, layer: number): RoutedExpert[] {
    const tierCandidates = this.tiers.filter((t) => active[t.index]);
    const topTiers = this.topK(
      tierCandidates.map((t) => t.columns.tier),
      logits,
      offset,
      this.tierTopK,
      seed,
      layer,
    ).map((col) => tierCandidates.find((t) => t.columns.tier === col) as RouterTier);
    const tierGates = softmax(topTiers.map((t) => logits[offset + t.columns.tier]));

    const out: RoutedExpert[] = [];
    topTiers.forEach((t, ti) => {
      const groupCols = range(t.groups).map((g) => t.columns.groups + g);
      const topGroups = this.topK(groupCols, logits, offset, t.groupTopK, seed, layer);
      const groupGates = softmax(topGroups.map((c) => logits[offset + c]));
      topGroups.forEach((gc, gi) => {
        const group = gc - t.columns.groups;
        const first = t.columns.experts + group * t.expertsPerGroup;
        const expertCols = range(t.expertsPerGroup).map((e) => first + e);
        const topExperts = this.topK(expertCols, logits, offset, t.expertTopK, seed, layer);
        const expertGates = softmax(topExperts.map((c) => logits[offset + c]));
        topExperts.forEach((ec, ei) => {
          out.push({
            tier: t.index,
            group,
            expert: ec - first,
            gate: tierGates[ti] * groupGates[gi] * expertGates[ei],
          });
        });
      });
    });
    return out.sort((a, b) => a.tier - b.tier || a.group - b.group || a.expert - b.expert);
  }

  /** Stable, deterministic top-k of router columns (see file comment). */
  topK(columns: number[], logits: Float32Array, offset: number, k: number, seed: bigint, layer: number): number[] {
    const hashes = new Map<number, bigint>();
    const hash = (col: number) => {
      let h = hashes.get(col);
      if (h === undefined) {
        h = tieBreakHash(seed, layer, col);
        hashes.set(col, h);
      }
      return h;
    };
    const q = (col: number) => Math.round(logits[offset + col] * this.scale);
    return [...columns]
      .sort((a, b) => {
        const d = q(b) - q(a);
        if (d !== 0) return d;
        const ha = hash(a);
        const hb = hash(b);
        if (ha !== hb) return ha > hb ? -1 : 1;
        return a - b;
      })
      .slice(0, Math.min(k, columns.length));
  }
}

export function tieBreakHash(seed: bigint, layer: number, column: number): bigint {
  return fnv1a64(u64Bytes(seed, BigInt(layer), BigInt(column)));
}

function softmax(values: number[]): number[] {
  const max = Math.max(...values);
  const e = values.map((v) => Math.exp(v - max));
  let total = 0;
  for (const x of e) total += x;
  return e.map((x) => x / total);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
