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

/** One row of router logits being routed: where its logits are, and what breaks its ties. */
interface RouterRow {
  logits: Float32Array;
  offset: number;
  seed: bigint;
  layer: number;
}

export class HserRouter {
  private readonly scale: number;
  /** the tiers in index order (routed experts are emitted in it) */
  private readonly byIndex: readonly RouterTier[];

  constructor(
    private readonly tiers: readonly RouterTier[],
    private readonly tierTopK: number,
    fractionBits: number,
  ) {
    this.scale = 2 ** fractionBits;
    this.byIndex = [...tiers].sort((a, b) => a.index - b.index);
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

  /**
   * Runs for every row at every layer of every step: written to allocate little (no sorted
   * copies, no per-call maps or ranges; the worker's garbage collections pause every
   * request's hop). router-reference.test.ts holds it to the plain sort-based definition.
   */
  route(logits: Float32Array, offset: number, active: readonly boolean[], seed: bigint, layer: number): RoutedExpert[] {
    const row: RouterRow = { logits, offset, seed, layer };
    const candidates: RouterTier[] = [];
    for (const t of this.byIndex) if (active[t.index]) candidates.push(t);
    const topTiers = this.select(candidates.length, (i) => candidates[i].columns.tier, this.tierTopK, row);
    const tierGates = softmaxOf(topTiers, logits, offset);
    // Emitted in (tier index, group, expert) order, the order the combine step sums in: each
    // kept one is found at its rank in its top-k list, whose softmax gives its gate.
    const out: RoutedExpert[] = [];
    for (const t of candidates) {
      const ti = topTiers.indexOf(t.columns.tier);
      if (ti < 0) continue;
      const groupsAt = t.columns.groups;
      const topGroups = this.select(t.groups, (g) => groupsAt + g, t.groupTopK, row);
      const groupGates = softmaxOf(topGroups, logits, offset);
      for (let group = 0; group < t.groups; group++) {
        const gi = topGroups.indexOf(groupsAt + group);
        if (gi < 0) continue;
        const first = t.columns.experts + group * t.expertsPerGroup;
        const topExperts = this.select(t.expertsPerGroup, (e) => first + e, t.expertTopK, row);
        const expertGates = softmaxOf(topExperts, logits, offset);
        for (let expert = 0; expert < t.expertsPerGroup; expert++) {
          const ei = topExperts.indexOf(first + expert);
          if (ei >= 0)
            out.push({ tier: t.index, group, expert, gate: tierGates[ti] * groupGates[gi] * expertGates[ei] });
        }
      }
    }
    return out;
  }

  /** Stable, deterministic top-k of router columns (see file comment), best first. */
  topK(
    columns: readonly number[],
    logits: Float32Array,
    offset: number,
    k: number,
    seed: bigint,
    layer: number,
  ): number[] {
    return this.select(columns.length, (i) => columns[i], k, { logits, offset, seed, layer });
  }

  /**
   * The top k of n columns (`column(i)`, i < n), best first: the higher quantised score,
   * then the higher tie-break hash (computed only for a tie), then the lower column. A
   * strict total order, so picking the best remaining k times gives a full sort's first k.
   */
  private select(n: number, column: (i: number) => number, k: number, row: RouterRow): number[] {
    const { logits, offset, seed, layer } = row;
    const out: number[] = [];
    let hashes: Map<number, bigint> | undefined;
    const hash = (col: number): bigint => {
      hashes ??= new Map();
      let h = hashes.get(col);
      if (h === undefined) hashes.set(col, (h = tieBreakHash(seed, layer, col)));
      return h;
    };
    for (let taken = Math.min(k, n); out.length < taken;) {
      let best = -1;
      let bestQ = 0;
      for (let i = 0; i < n; i++) {
        const col = column(i);
        if (out.includes(col)) continue;
        const q = Math.round(logits[offset + col] * this.scale);
        if (best < 0 || q > bestQ || (q === bestQ && before(hash(col), col, hash(best), best))) {
          best = col;
          bestQ = q;
        }
      }
      out.push(best);
    }
    return out;
  }
}

/** Between two columns of equal score: the higher hash first, then the lower column. */
function before(hashA: bigint, a: number, hashB: bigint, b: number): boolean {
  return hashA !== hashB ? hashA > hashB : a < b;
}

export function tieBreakHash(seed: bigint, layer: number, column: number): bigint {
  return fnv1a64(u64Bytes(seed, BigInt(layer), BigInt(column)));
}

/** Softmax over the columns' logits, in their order: the same sums as over the values themselves. */
function softmaxOf(columns: readonly number[], logits: Float32Array, offset: number): number[] {
  let max = -Infinity;
  for (const c of columns) max = Math.max(max, logits[offset + c]);
  const e: number[] = [];
  let total = 0;
  for (const c of columns) {
    const x = Math.exp(logits[offset + c] - max);
    e.push(x);
    total += x;
  }
  for (let i = 0; i < e.length; i++) e[i] /= total;
  return e;
}
