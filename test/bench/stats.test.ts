import { percentile, percentileRatioInterval } from "../../bench/lib/stats";

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
/** a light tail: 118 requests at 20–39 ms and two slow ones */
const alone = [...range(118).map((i) => 20 + (i % 20)), 60, 90];

describe("bench stats: nearest-rank percentiles", () => {
  it("takes the value at rank ceil(p/100 · n), whatever the input order", () => {
    const xs = range(120).reverse();
    expect(percentile(xs, 99)).toBe(119); // of 120 requests, the p99 is the second-slowest
    expect(percentile(xs, 50)).toBe(60);
    expect(percentile(xs, 100)).toBe(120);
    expect(percentile(xs, 0)).toBe(1);
    expect(percentile([], 99)).toBeNaN();
  });
});

describe("bench stats: bootstrap interval of a percentile ratio", () => {
  it("is a point when neither sample varies", () => {
    expect(percentileRatioInterval([10, 10, 10], [20, 20], 99)).toEqual({ low: 2, high: 2 });
  });

  it("brackets the ratio of the samples themselves, and is the same for the same samples and seed", () => {
    const fair = alone.map((x) => x * 1.5); // the same shape, 1.5× slower
    const point = percentile(fair, 99) / percentile(alone, 99);
    const interval = percentileRatioInterval(alone, fair, 99);
    expect(point).toBeCloseTo(1.5, 12);
    expect(interval.low).toBeLessThan(point);
    expect(interval.high).toBeGreaterThan(point);
    expect(percentileRatioInterval(alone, fair, 99)).toEqual(interval);
  });

  it("is wider at the 99th percentile of ~120 requests than at the median", () => {
    const fair = [...range(118).map((i) => 25 + (i % 20)), 70, 120];
    const width = (p: number) => {
      const { low, high } = percentileRatioInterval(alone, fair, p);
      return high - low;
    };
    expect(width(99)).toBeGreaterThan(2 * width(50));
  });

  it("is NaN for an empty sample", () => {
    const empty = percentileRatioInterval([], [1, 2], 99);
    expect(empty.low).toBeNaN();
    expect(empty.high).toBeNaN();
  });
});
