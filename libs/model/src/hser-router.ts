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
  /** tie-break hashes computed so far (only columns that tied) */
  hashes?: Map<number, bigint>;
}

/**
 * One level of a route (tiers, groups or experts): its candidate columns, the top k of them
 * best first, and their gates. route() runs to its end without yielding, so one set of
 * levels per router serves every call and a route allocates only what it returns.
 */
class Level {
  readonly cols: Int32Array;
  readonly top: Int32Array;
  readonly gates: Float64Array;
  n = 0;
  k = 0;

  constructor(size: number) {
    this.cols = new Int32Array(size);
    this.top = new Int32Array(size);
    this.gates = new Float64Array(size);
  }

  /** Where `col` ranks in the top k, -1 when it is not kept. */
  rank(col: number): number {
    for (let i = 0; i < this.k; i++) if (this.top[i] === col) return i;
    return -1;
  }
}

export class HserRouter {
  private readonly scale: number;
  /** the tiers in index order (routed experts are emitted in it) */
  private readonly byIndex: readonly RouterTier[];
  private readonly kept: RouterTier[] = [];
  private readonly tierLevel: Level;
  private readonly groupLevel: Level;
  private readonly expertLevel: Level;

  constructor(
    private readonly tiers: readonly RouterTier[],
    private readonly tierTopK: number,
    fractionBits: number,
  ) {
    this.scale = 2 ** fractionBits;
    this.byIndex = [...tiers].sort((a, b) => a.index - b.index);
    this.tierLevel = new Level(tiers.length);
    this.groupLevel = new Level(Math.max(0, ...tiers.map((t) => t.groups)));
    this.expertLevel = new Level(Math.max(0, ...tiers.map((t) => t.expertsPerGroup)));
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
   * Runs for every row at every layer of every step: written to allocate only its output (the
   * levels are the router's scratch; no sorted copies, maps or closures; the worker's garbage
   * collections pause every request's hop). router-reference.test.ts holds it to the plain
   * sort-based definition.
   */
  route(logits: Float32Array, offset: number, active: readonly boolean[], seed: bigint, layer: number): RoutedExpert[] {
    const row: RouterRow = { logits, offset, seed, layer };
    const tiers = this.tierLevel;
    const kept = this.kept;
    tiers.n = 0;
    for (const t of this.byIndex) {
      if (!active[t.index]) continue;
      kept[tiers.n] = t;
      tiers.cols[tiers.n++] = t.columns.tier;
    }
    this.choose(tiers, this.tierTopK, row);
    // Emitted in (tier index, group, expert) order, the order the combine step sums in: each
    // kept one is found at its rank in its top-k list, whose softmax gives its gate.
    const out: RoutedExpert[] = [];
    for (let c = 0; c < tiers.n; c++) {
      const t = kept[c];
      const ti = tiers.rank(t.columns.tier);
      if (ti < 0) continue;
      const groups = this.groupLevel;
      const groupsAt = t.columns.groups;
      groups.n = t.groups;
      for (let g = 0; g < t.groups; g++) groups.cols[g] = groupsAt + g;
      this.choose(groups, t.groupTopK, row);
      for (let group = 0; group < t.groups; group++) {
        const gi = groups.rank(groupsAt + group);
        if (gi < 0) continue;
        const experts = this.expertLevel;
        const first = t.columns.experts + group * t.expertsPerGroup;
        experts.n = t.expertsPerGroup;
        for (let e = 0; e < t.expertsPerGroup; e++) experts.cols[e] = first + e;
        this.choose(experts, t.expertTopK, row);
        for (let expert = 0; expert < t.expertsPerGroup; expert++) {
          const ei = experts.rank(first + expert);
          if (ei >= 0)
            out.push({
              tier: t.index,
              group,
              expert,
              gate: tiers.gates[ti] * groups.gates[gi] * experts.gates[ei],
            });
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
    const level = new Level(columns.length);
    columns.forEach((c, i) => (level.cols[i] = c));
    level.n = columns.length;
    this.select(level, k, { logits, offset, seed, layer });
    return Array.from(level.top.subarray(0, level.k));
  }

  /** The level's top k (select), then their gates: the softmax over their logits, in rank order. */
  private choose(level: Level, k: number, row: RouterRow): void {
    this.select(level, k, row);
    const { logits, offset } = row;
    let max = -Infinity;
    for (let i = 0; i < level.k; i++) max = Math.max(max, logits[offset + level.top[i]]);
    let total = 0;
    for (let i = 0; i < level.k; i++) {
      const x = Math.exp(logits[offset + level.top[i]] - max);
      level.gates[i] = x;
      total += x;
    }
    for (let i = 0; i < level.k; i++) level.gates[i] /= total;
  }

  /**
   * The top k of the level's n columns, best first: the higher quantised score, then the
   * higher tie-break hash (computed only for a tie), then the lower column. A strict total
   * order, so picking the best remaining k times gives a full sort's first k.
   */
  private select(level: Level, k: number, row: RouterRow): void {
    const { logits, offset } = row;
    const { cols, top, n } = level;
    level.k = 0;
    for (let taken = Math.min(k, n); level.k < taken;) {
      let best = -1;
      let bestQ = 0;
      for (let i = 0; i < n; i++) {
        const col = cols[i];
        if (level.rank(col) >= 0) continue;
        const q = Math.round(logits[offset + col] * this.scale);
        if (best < 0 || q > bestQ || (q === bestQ && before(hashOf(row, col), col, hashOf(row, best), best))) {
          best = col;
          bestQ = q;
        }
      }
      top[level.k++] = best;
    }
  }
}

/** The column's tie-break hash for this row, computed once. */
function hashOf(row: RouterRow, col: number): bigint {
  row.hashes ??= new Map();
  let h = row.hashes.get(col);
  if (h === undefined) row.hashes.set(col, (h = tieBreakHash(row.seed, row.layer, col)));
  return h;
}

/** Between two columns of equal score: the higher hash first, then the lower column. */
function before(hashA: bigint, a: number, hashB: bigint, b: number): boolean {
  return hashA !== hashB ? hashA > hashB : a < b;
}

export function tieBreakHash(seed: bigint, layer: number, column: number): bigint {
  return fnv1a64(u64Bytes(seed, BigInt(layer), BigInt(column)));
}
