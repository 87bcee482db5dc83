import { LoadGovernor } from "./load-governor";

/**
 * The load governor on a manual clock: session creations "take" the ms the test says (the
 * clock moves by them) and the governor's waits move it too. Nothing here depends on real
 * time.
 */
describe("LoadGovernor", () => {
  function manual(
    share: number,
    burstMs: number,
    weights: Record<string, number> = {},
    contended?: (now: number) => boolean,
  ) {
    let now = 0;
    const order: string[] = [];
    const slept: number[] = [];
    const g = new LoadGovernor({
      share,
      burstMs,
      weightOf: (t) => weights[t] ?? 1,
      contended: contended && (() => contended(now)),
      now: () => now,
      sleep: async (ms) => {
        slept.push(ms);
        now += ms;
      },
    });
    /** a load of `ms` for these tenants, noted by `name` when it runs */
    const load = (name: string, ms: number, ...tenants: string[]) =>
      g.run(new Set(tenants), async () => {
        order.push(name);
        now += ms;
        return name;
      });
    return { g, order, slept, load, clock: () => now };
  }

  it("loads take at most `share` of wall time once the burst is spent", async () => {
    const { load, clock, g } = manual(0.25, 10);
    await Promise.all(Array.from({ length: 20 }, (_, i) => load(`n${i}`, 10, "N")));
    // 200 ms of loads ≤ the burst (10) + share × wall time + the last load (it may start
    // with the budget at 0 and overdraw it): wall time ≥ (200 − 10 − 10) ÷ 0.25 = 720 ms,
    // where back to back it would be 200
    expect(clock()).toBeGreaterThanOrEqual((200 - 10 - 10) / 0.25);
    expect(clock()).toBeLessThanOrEqual(200 / 0.25 + 10);
    expect(g.chargedMs("N")).toBe(200);
  });

  it("nothing else wants the thread: loads go back to back and owe nothing (work-conserving)", async () => {
    const { load, clock, slept } = manual(0.25, 10, {}, () => false);
    await Promise.all(Array.from({ length: 20 }, (_, i) => load(`n${i}`, 10, "N")));
    expect(clock()).toBe(200);
    expect(slept).toEqual([]);
  });

  it("the share binds only while a decode step wants the thread: a debt stops being waited off when steps stop", async () => {
    // steps want the thread for the first 300 ms, then every sequence is parked on these loads
    const { load, clock } = manual(0.25, 10, {}, (now) => now < 300);
    await Promise.all(Array.from({ length: 20 }, (_, i) => load(`n${i}`, 10, "N")));
    // throttled at first (~ 10 + 0.25 × 300 ms of loads by then), back to back after
    const throttled = (10 + 0.25 * 300 + 10) / 10;
    expect(clock()).toBeLessThanOrEqual(300 + 10 + (20 - throttled + 1) * 10 + 10);
    expect(clock()).toBeGreaterThan(300);
  });

  it("share 1: no waiting, loads back to back", async () => {
    const { load, clock, slept } = manual(1, 0);
    await Promise.all(Array.from({ length: 5 }, (_, i) => load(`n${i}`, 10, "N")));
    expect(clock()).toBe(50);
    expect(slept).toEqual([]);
  });

  it("a tenant's occasional load goes ahead of another tenant's queued flood", async () => {
    const { load, order } = manual(0.5, 10);
    const flood = Array.from({ length: 10 }, (_, i) => load(`n${i}`, 10, "N"));
    const victim = load("v", 10, "V");
    await Promise.all([...flood, victim]);
    // n0 was running when v arrived; v goes next, not after n9
    expect(order.indexOf("v")).toBeLessThanOrEqual(2);
  });

  it("two flooding tenants alternate by weight: weight 2 gets twice the loads", async () => {
    const { load, order } = manual(1, 0, { A: 2, B: 1 });
    const all = [
      ...Array.from({ length: 12 }, (_, i) => load(`a${i}`, 10, "A")),
      ...Array.from({ length: 12 }, (_, i) => load(`b${i}`, 10, "B")),
    ];
    await Promise.all(all);
    const first12 = order.slice(0, 12);
    const a = first12.filter((n) => n.startsWith("a")).length;
    expect(a).toBeGreaterThanOrEqual(7);
    expect(a).toBeLessThanOrEqual(9);
  });

  it("a failed load rejects its caller only; the next runs", async () => {
    const { g, load } = manual(1, 0);
    const bad = g.run(new Set(["N"]), () => Promise.reject(new Error("sha256 mismatch")));
    const good = load("ok", 1, "N");
    await expect(bad).rejects.toThrow("sha256 mismatch");
    await expect(good).resolves.toBe("ok");
  });

  it("refuses a share ≤ 0 or a negative burst, naming it", () => {
    expect(() => new LoadGovernor({ share: 0, burstMs: 1 })).toThrow(/load share must be > 0/);
    expect(() => new LoadGovernor({ share: 0.5, burstMs: -1 })).toThrow(/burstMs must be ≥ 0/);
  });
});
