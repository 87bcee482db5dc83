import { createByteTokenizer, samplableTokens } from "./byte-tokenizer";
import { KvCache } from "./kv-cache";
import { resolveModeTiers } from "./mode-tiers";
import { deriveRoutingSeed } from "./routing-seed";
import { fnv1a64 } from "./seeded-random";
import { sampleToken, samplingUniform } from "./token-sampler";

describe("byte tokenizer", () => {
  const tok = createByteTokenizer(256, 257);
  it("round-trips UTF-8 prompts and skips BOS/EOS when decoding", () => {
    const text = "héllo, wörld ✓\n";
    const ids = tok.encode(text);
    expect(ids).toEqual([...Buffer.from(text, "utf8")]);
    expect(tok.decode([256, ...ids, 257])).toBe(text);
    expect(tok.tokenText(65)).toBe("A");
    expect(tok.tokenText(257)).toBe("");
  });
  it("samples only newline, printable ASCII and EOS", () => {
    const ids = samplableTokens(257);
    expect(ids).toHaveLength(1 + 95 + 1);
    expect(Buffer.from(ids.filter((i) => i < 256)).toString("latin1")).toMatch(/^\n[ -~]+$/);
  });
});

describe("token sampler", () => {
  const allowed = samplableTokens(257);
  const logits = new Float32Array(258).fill(-5);
  it("argmax at temperature 0, ties broken by the seeded hash then id", () => {
    logits[101] = 3;
    expect(sampleToken(logits, 0, allowed, 0, 1n, 0)).toBe(101);
    logits[120] = 3; // now a tie between 101 and 120
    const winners = new Set<number>();
    for (let i = 0; i < 32; i++) {
      const w = sampleToken(logits, 0, allowed, 0, 9n, i);
      expect(sampleToken(logits, 0, allowed, 0, 9n, i)).toBe(w);
      winners.add(w);
    }
    expect([...winners].sort()).toEqual([101, 120]);
  });
  it("draws from a generator keyed by (seed, index): any index replays alone", () => {
    const flat = new Float32Array(258).fill(0);
    const run = (seed: bigint) => Array.from({ length: 200 }, (_, i) => sampleToken(flat, 0, allowed, 1, seed, i));
    const a = run(5n);
    expect(sampleToken(flat, 0, allowed, 1, 5n, 137)).toBe(a[137]);
    expect(run(6n)).not.toEqual(a);
    expect(new Set(a).size).toBeGreaterThan(50); // uniform logits spread over the 97 tokens
    const u = Array.from({ length: 1000 }, (_, i) => samplingUniform(3n, i));
    expect(Math.min(...u)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...u)).toBeLessThan(1);
    expect(u.reduce((s, x) => s + x, 0) / u.length).toBeCloseTo(0.5, 1);
  });
});

describe("seeds and hashes", () => {
  it("derives routing seeds with a per-tenant HMAC (first 8 bytes, big-endian)", () => {
    // Known answer (openssl / node:crypto): HMAC-SHA256(key "lite-llm/seed/v1:ten_a", "42") starts 9fd2bcce94845dc8.
    expect(deriveRoutingSeed("ten_a", "42")).toBe(0x9fd2bcce94845dc8n);
    expect(deriveRoutingSeed("ten_a", "42")).not.toBe(deriveRoutingSeed("ten_b", "42"));
    expect(deriveRoutingSeed("ten_a", "42")).not.toBe(deriveRoutingSeed("ten_a", "43"));
    expect(deriveRoutingSeed("ten_a", "42") < 2n ** 64n).toBe(true);
  });
  it("FNV-1a 64 matches the published test vectors", () => {
    expect(fnv1a64(new Uint8Array())).toBe(0xcbf29ce484222325n);
    expect(fnv1a64(Buffer.from("a"))).toBe(0xaf63dc4c8601ec8cn);
    expect(fnv1a64(Buffer.from("foobar"))).toBe(0x85944171f73967e8n);
  });
});

describe("mode → TierSet", () => {
  const tiers = [
    { id: "m.t3", rank: 3, placement: "COLD" as const, restricted: true },
    { id: "m.t0", rank: 0, placement: "HOT" as const, restricted: false },
    { id: "m.t2", rank: 2, placement: "COLD" as const, restricted: false },
    { id: "m.t1", rank: 1, placement: "WARM" as const, restricted: false },
  ];
  it("maps modes by placement among non-restricted tiers; MAX is everything", () => {
    expect(resolveModeTiers(tiers, "FAST")).toEqual(["m.t0"]);
    expect(resolveModeTiers(tiers, "BALANCED")).toEqual(["m.t0", "m.t1"]);
    expect(resolveModeTiers(tiers, "DEEP")).toEqual(["m.t0", "m.t1", "m.t2"]);
    expect(resolveModeTiers(tiers, "MAX")).toEqual(["m.t0", "m.t1", "m.t2", "m.t3"]);
  });
});

describe("KV cache", () => {
  it("grows block by block with exact bytes, stores rows, and releases to zero", () => {
    const kv = new KvCache(3, 8, 4);
    expect(kv.blockBytes).toBe(3 * 2 * 4 * 8 * 4);
    expect(kv.bytes()).toBe(0);
    for (let n = 1; n <= 13; n++) {
      kv.grow(n);
      expect(kv.bytes()).toBe(Math.ceil(n / 4) * kv.blockBytes);
      const row = Float32Array.from({ length: 8 }, (_, i) => n * 10 + i);
      kv.write(2, n - 1, row, 0, row, 0);
    }
    // One head over values equal to keys: attending from the last position with a huge
    // query picks the largest key, i.e. the last row written.
    const q = new Float32Array(8).fill(1000);
    const out = new Float32Array(8);
    kv.attend(2, 12, 1, q, 0, out, 0);
    expect(Array.from(out)).toEqual(Array.from({ length: 8 }, (_, i) => 130 + i));
    kv.release();
    expect(kv.bytes()).toBe(0);
    expect(kv.length).toBe(0);
  });
});
