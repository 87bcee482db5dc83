import { ManualClock } from "./clock";
import { TtlCache } from "./ttl-cache";

describe("TtlCache", () => {
  const setup = (ttlMs = 1000, maxEntries = 3) => {
    const clock = new ManualClock(0);
    const cache = new TtlCache<number>({ ttlMs, maxEntries, clock });
    let loads = 0;
    const load = (v: number) => async () => (loads++, v);
    return { clock, cache, load, loads: () => loads };
  };

  it("serves a loaded value until ttlMs has passed, then loads again", async () => {
    const { clock, cache, load, loads } = setup();
    expect(await cache.get("a", load(1))).toBe(1);
    clock.advance(999);
    expect(await cache.get("a", load(2))).toBe(1);
    clock.advance(1); // exactly ttlMs after the load: stale
    expect(await cache.get("a", load(3))).toBe(3);
    expect(loads()).toBe(2);
  });

  it("invalidate drops the matching entries at once and only them", async () => {
    const { cache, load } = setup();
    await cache.get("tenant:a", load(1));
    await cache.get("tenant:b", load(2));
    cache.invalidate((k) => k === "tenant:a");
    expect(await cache.get("tenant:a", load(10))).toBe(10);
    expect(await cache.get("tenant:b", load(20))).toBe(2);
    cache.invalidate();
    expect(await cache.get("tenant:b", load(30))).toBe(30);
  });

  it("does not keep a value whose load was in flight when an invalidation came", async () => {
    const { cache, load } = setup();
    let release!: () => void;
    const slow = cache.get("a", async () => {
      await new Promise<void>((r) => (release = r));
      return 1; // read before the change
    });
    await Promise.resolve();
    cache.invalidate((k) => k === "a");
    release();
    expect(await slow).toBe(1);
    expect(await cache.get("a", load(2))).toBe(2);
  });

  it("holds at most maxEntries, dropping the oldest; ttlMs 0 keeps nothing", async () => {
    const { cache, load } = setup(1000, 2);
    await cache.get("a", load(1));
    await cache.get("b", load(2));
    await cache.get("c", load(3));
    expect(cache.size).toBe(2);
    expect(await cache.get("a", load(4))).toBe(4);
    const none = setup(0).cache;
    await none.get("a", load(1));
    expect(none.size).toBe(0);
  });
});
