/**
 * A latency histogram with FIXED bucket boundaries, so that histograms of different
 * processes and time buckets merge by adding their counts: the merge of two histograms is
 * exactly the histogram of the union of their samples. Percentiles are read from the merged
 * counts (never averaged across processes).
 *
 * Boundaries: 0.25 ms × 1.25^k up to 120 s (59 finite buckets) plus one overflow bucket. A
 * percentile is interpolated linearly inside the bucket holding it, so its error is at most
 * the bucket's width: 25 % of the value (for values between 0.25 ms and 120 s).
 */

const FIRST_BOUND_MS = 0.25;
const GROWTH = 1.25;
const LAST_BOUND_MS = 120_000;

/** Upper bounds (inclusive) of the finite buckets, ms, ascending. */
export const LATENCY_BOUNDS_MS: readonly number[] = (() => {
  const bounds: number[] = [];
  for (let b = FIRST_BOUND_MS; b < LAST_BOUND_MS; b *= GROWTH) bounds.push(Number(b.toPrecision(6)));
  bounds.push(LAST_BOUND_MS);
  return bounds;
})();

/** Number of buckets: every finite bound, then the overflow bucket (> LAST_BOUND_MS). */
export const LATENCY_BUCKETS = LATENCY_BOUNDS_MS.length + 1;

/** Counts per bucket index (sparse: a missing index counts 0). */
export type LatencyCounts = Map<number, number>;

/** The bucket of one sample: the first bound ≥ ms (binary search); negative samples count as 0. */
export function latencyBucketOf(ms: number): number {
  const v = Number.isFinite(ms) ? Math.max(0, ms) : LAST_BOUND_MS * 2;
  let lo = 0;
  let hi = LATENCY_BOUNDS_MS.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (LATENCY_BOUNDS_MS[mid] >= v) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export function addSample(counts: LatencyCounts, ms: number, n = 1): void {
  const b = latencyBucketOf(ms);
  counts.set(b, (counts.get(b) ?? 0) + n);
}

/** a += b (the merge is a sum per bucket). */
export function mergeInto(a: LatencyCounts, b: ReadonlyMap<number, number>): LatencyCounts {
  for (const [k, n] of b) a.set(k, (a.get(k) ?? 0) + n);
  return a;
}

export function histogramOf(samplesMs: Iterable<number>): LatencyCounts {
  const c: LatencyCounts = new Map();
  for (const s of samplesMs) addSample(c, s);
  return c;
}

/**
 * The q-quantile (0 < q ≤ 1), ms, or null with no samples: the rank ceil(q × n) falls in one
 * bucket; the value is interpolated between that bucket's lower and upper bound by the
 * rank's position among the bucket's samples. The overflow bucket answers its lower bound.
 */
export function quantileMs(counts: ReadonlyMap<number, number>, q: number): number | null {
  if (!(q > 0 && q <= 1)) throw new RangeError(`quantile ${q} is not in (0, 1]`);
  let total = 0;
  for (const n of counts.values()) total += n;
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let b = 0; b < LATENCY_BUCKETS; b++) {
    const n = counts.get(b) ?? 0;
    if (n === 0) continue;
    if (seen + n >= rank) {
      const lower = b === 0 ? 0 : LATENCY_BOUNDS_MS[b - 1];
      if (b >= LATENCY_BOUNDS_MS.length) return lower;
      const upper = LATENCY_BOUNDS_MS[b];
      return lower + ((upper - lower) * (rank - seen)) / n;
    }
    seen += n;
  }
  return null;
}
