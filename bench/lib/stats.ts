/** Order statistics for the benchmarks' reports. */

/** The p-th percentile (nearest rank) of values; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export interface Interval {
  low: number;
  high: number;
}

/**
 * A percentile-bootstrap interval of percentile(b, p) ÷ percentile(a, p): both samples
 * resampled with replacement `iterations` times, the ratio's (1 − confidence)/2 and
 * (1 + confidence)/2 quantiles. How far a ratio of two tail percentiles of ~100 requests
 * each can move by chance alone (the isolation bench's p99 is its second-slowest request).
 * Seeded, so the same samples give the same interval.
 */
export function percentileRatioInterval(
  a: readonly number[],
  b: readonly number[],
  p: number,
  opts: { iterations?: number; confidence?: number; seed?: number } = {},
): Interval {
  if (a.length === 0 || b.length === 0) return { low: NaN, high: NaN };
  const iterations = opts.iterations ?? 2000;
  const confidence = opts.confidence ?? 0.9;
  const random = mulberry32(opts.seed ?? 1);
  const resample = (xs: readonly number[]) => Array.from(xs, () => xs[Math.floor(random() * xs.length)]);
  const ratios: number[] = [];
  for (let i = 0; i < iterations; i++) ratios.push(percentile(resample(b), p) / percentile(resample(a), p));
  return {
    low: percentile(ratios, (100 * (1 - confidence)) / 2),
    high: percentile(ratios, (100 * (1 + confidence)) / 2),
  };
}

/** mulberry32: a small seeded generator of floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}
