import {
  LOAD_ESTIMATE_FLOOR_MS,
  LOAD_ESTIMATE_WINDOW,
  LoadTimeEstimates,
  TimingDefence,
  nextPowerOfTwo,
} from "./timing-defence";

describe("load-time estimates", () => {
  it("are the floor before any load, and exactly the floor for a load of the floor's length", () => {
    const e = new LoadTimeEstimates();
    expect(e.estimateMs("m.t0")).toBe(LOAD_ESTIMATE_FLOOR_MS);
    e.record("m.t0", LOAD_ESTIMATE_FLOOR_MS);
    expect(e.estimateMs("m.t0")).toBe(LOAD_ESTIMATE_FLOOR_MS);
    e.record("m.t0", LOAD_ESTIMATE_FLOOR_MS + 0.1);
    expect(e.estimateMs("m.t0")).toBe(2 * LOAD_ESTIMATE_FLOOR_MS);
  });

  it("round the slowest recent load up to a power of two ms, per tier", () => {
    const e = new LoadTimeEstimates(1);
    e.record("m.t1", 40);
    e.record("m.t1", 90.5);
    e.record("m.t1", 12);
    e.record("m.t2", 300);
    expect(e.estimateMs("m.t1")).toBe(128);
    expect(e.estimateMs("m.t2")).toBe(512);
    expect(e.estimateMs("m.t0")).toBe(1);
    expect([0, 1, 1.5, 2, 3, 64, 64.01].map(nextPowerOfTwo)).toEqual([1, 1, 2, 2, 4, 64, 128]);
  });

  it("look at the last `window` loads: the one before them no longer counts", () => {
    const e = new LoadTimeEstimates(1);
    e.record("m.t0", 1000); // the slowest, first in
    for (let i = 0; i < LOAD_ESTIMATE_WINDOW - 1; i++) e.record("m.t0", 10);
    expect(e.estimateMs("m.t0")).toBe(1024); // exactly `window` loads: still counted
    e.record("m.t0", 10);
    expect(e.estimateMs("m.t0")).toBe(16);
  });

  it("refuse a floor or window that cannot work", () => {
    expect(() => new LoadTimeEstimates(0)).toThrow("floorMs");
    expect(() => new LoadTimeEstimates(8, 0)).toThrow("window");
  });
});

describe("timing defence", () => {
  it("pads by the largest estimate owed and counts padded first uses per tenant, when on", () => {
    const told: Array<[string, number]> = [];
    const d = new TimingDefence({ enabled: true, floorMs: 4, onPaddedFirstUses: (t, n) => told.push([t, n]) });
    d.estimates.record("m.t0", 3);
    d.estimates.record("m.t2", 50);
    expect(d.padMs([])).toBe(0);
    expect(d.padMs(["m.t0"])).toBe(4);
    expect(d.padMs(["m.t0", "m.t2"])).toBe(64);
    d.notePaddedFirstUses(new Map([["ten_a", 3]]));
    d.notePaddedFirstUses(new Map([["ten_a", 1]]));
    expect(d.paddedFirstUses("ten_a")).toBe(4);
    expect(told).toEqual([
      ["ten_a", 3],
      ["ten_a", 1],
    ]);
    // another tenant's count is its own (and none here)
    expect(d.paddedFirstUses("ten_b")).toBe(0);
  });

  it("pads and counts nothing when off (loads are still measured)", () => {
    const d = new TimingDefence({ enabled: false });
    d.estimates.record("m.t2", 50);
    expect(d.padMs(["m.t2"])).toBe(0);
    d.notePaddedFirstUses(new Map([["ten_a", 2]]));
    expect(d.paddedFirstUses("ten_a")).toBe(0);
    expect(d.estimates.estimateMs("m.t2")).toBe(64);
  });
});
