import fc from "fast-check";
import {
  LATENCY_BOUNDS_MS,
  LATENCY_BUCKETS,
  histogramOf,
  latencyBucketOf,
  mergeInto,
  quantileMs,
} from "@lite/telemetry";

const sample = fc.double({ min: 0, max: 200_000, noNaN: true });
const samples = fc.array(sample, { maxLength: 300 });

describe("latency histogram", () => {
  it("has ascending bounds ending at 120 s, one overflow bucket", () => {
    for (let i = 1; i < LATENCY_BOUNDS_MS.length; i++)
      expect(LATENCY_BOUNDS_MS[i]).toBeGreaterThan(LATENCY_BOUNDS_MS[i - 1]);
    expect(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]).toBe(120_000);
    expect(latencyBucketOf(1e9)).toBe(LATENCY_BUCKETS - 1);
    expect(latencyBucketOf(0)).toBe(0);
    expect(latencyBucketOf(-5)).toBe(0);
  });

  it("merging two processes' histograms equals the histogram of the union of their samples", () => {
    fc.assert(
      fc.property(samples, samples, (a, b) => {
        const merged = mergeInto(histogramOf(a), histogramOf(b));
        expect(merged).toEqual(histogramOf([...a, ...b]));
        // and so every percentile of the merge is the union's, whichever order the merge ran in
        const other = mergeInto(histogramOf(b), histogramOf(a));
        for (const q of [0.5, 0.9, 0.99, 1]) expect(quantileMs(merged, q)).toBe(quantileMs(other, q));
      }),
    );
  });

  it("a percentile lies in the bucket of the exact percentile (within 25 % above 0.25 ms)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 100_000, noNaN: true }), { minLength: 1, maxLength: 300 }),
        fc.constantFrom(0.5, 0.99),
        (xs, q) => {
          const sorted = [...xs].sort((x, y) => x - y);
          const exact = sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1];
          const est = quantileMs(histogramOf(xs), q)!;
          const b = latencyBucketOf(exact);
          const lower = b === 0 ? 0 : LATENCY_BOUNDS_MS[b - 1];
          expect(est).toBeGreaterThanOrEqual(lower);
          expect(est).toBeLessThanOrEqual(LATENCY_BOUNDS_MS[b]);
          if (exact >= 0.25) expect(Math.abs(est - exact) / exact).toBeLessThanOrEqual(0.25 + 1e-9);
        },
      ),
    );
  });

  it("is not an average of percentiles: a slow process and a fast one merge to the union's p50", () => {
    const fast = histogramOf(Array.from({ length: 90 }, () => 10));
    const slow = histogramOf(Array.from({ length: 10 }, () => 1000));
    const p99Avg = ((quantileMs(fast, 0.99) ?? 0) + (quantileMs(slow, 0.99) ?? 0)) / 2;
    const merged = mergeInto(new Map(fast), slow);
    // within 25 % of the union's exact p50 (10 ms) and p99 (1000 ms)
    expect(Math.abs(quantileMs(merged, 0.5)! - 10)).toBeLessThanOrEqual(2.5);
    expect(Math.abs(quantileMs(merged, 0.99)! - 1000)).toBeLessThanOrEqual(250);
    expect(quantileMs(merged, 0.99)).not.toBe(p99Avg);
    expect(quantileMs(new Map(), 0.5)).toBeNull();
    expect(() => quantileMs(merged, 0)).toThrow(/not in \(0, 1\]/);
  });
});
