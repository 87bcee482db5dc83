import { KV_BLOCK_TOKENS, kvBlockBytes, kvCacheBytes, promptKvBytes } from "./kv-bytes";

describe("KV bytes from a model's shape", () => {
  const tiny = { layers: 2, dModel: 32 };
  const byDefault = { layers: 4, dModel: 256 };

  it("a block is blockTokens × layers × K and V × dModel × float32", () => {
    expect(KV_BLOCK_TOKENS).toBe(16);
    expect(kvBlockBytes(tiny)).toBe(16 * 2 * 2 * 32 * 4); // 8 KiB
    expect(kvBlockBytes(byDefault)).toBe(128 * 1024);
    expect(kvBlockBytes(tiny, 4)).toBe(2048);
  });

  it("counts whole blocks, at and around each block's edge", () => {
    expect(kvCacheBytes(tiny, 0)).toBe(0);
    expect(kvCacheBytes(tiny, 1)).toBe(8192);
    expect(kvCacheBytes(tiny, 16)).toBe(8192);
    expect(kvCacheBytes(tiny, 17)).toBe(16384);
    expect(kvCacheBytes(tiny, 17, 4)).toBe(5 * 2048);
  });

  it("a prompt holds BOS + its tokens", () => {
    expect(promptKvBytes(tiny, 15)).toBe(8192);
    expect(promptKvBytes(tiny, 16)).toBe(16384);
    expect(promptKvBytes(tiny, 0)).toBe(8192);
  });

  it("refuses a negative or fractional position count, naming it", () => {
    expect(() => kvCacheBytes(tiny, -1)).toThrow(/positions/);
    expect(() => kvCacheBytes(tiny, 1.5)).toThrow(/positions/);
  });
});
