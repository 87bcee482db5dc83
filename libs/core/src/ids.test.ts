import { hasPrefix, newId } from "./ids";

describe("newId", () => {
  it("prefixes ids with their kind", () => {
    const id = newId("tenant");
    expect(id).toMatch(/^ten_[0-9a-z]{26}$/);
    expect(hasPrefix("tenant", id)).toBe(true);
    expect(hasPrefix("completion", id)).toBe(false);
  });

  it("sorts by creation time", () => {
    const a = newId("completion", 1_700_000_000_000);
    const b = newId("completion", 1_700_000_000_001);
    const c = newId("completion", 1_800_000_000_000);
    expect([c, a, b].sort()).toEqual([a, b, c]);
  });

  it("does not repeat", () => {
    const ids = new Set(Array.from({ length: 10000 }, () => newId("apiKey", 1)));
    expect(ids.size).toBe(10000);
  });
});
