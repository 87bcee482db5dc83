/**
 * Deterministic pseudo-randomness and hashing. Everything here is a pure function of its
 * inputs, so weights, routing tie-breaks and sampling replay identically in any process.
 */

const MASK64 = (1n << 64n) - 1n;
const FNV64_OFFSET = 0xcbf29ce484222325n;
const FNV64_PRIME = 0x100000001b3n;

/** FNV-1a, 64 bit, over the given bytes. BigInt is slow but only used off the hot path (ties, seeds). */
export function fnv1a64(bytes: Uint8Array): bigint {
  let h = FNV64_OFFSET;
  for (let i = 0; i < bytes.length; i++) {
    h ^= BigInt(bytes[i]);
    h = (h * FNV64_PRIME) & MASK64;
  }
  return h;
}

/** Little-endian bytes of 64-bit unsigned words, for hashing tuples of integers. */
export function u64Bytes(...words: bigint[]): Uint8Array {
  const out = new Uint8Array(words.length * 8);
  const view = new DataView(out.buffer);
  words.forEach((w, i) => view.setBigUint64(i * 8, BigInt.asUintN(64, w), true));
  return out;
}

/** FNV-1a 32 bit over a string's UTF-8 bytes: used to derive per-file generator seeds. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(text, "utf8")) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** SplitMix64 finaliser: a well-mixed 64-bit value from any 64-bit input. */
export function splitmix64(x: bigint): bigint {
  let z = (BigInt.asUintN(64, x) + 0x9e3779b97f4a7c15n) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** A uniform double in [0, 1) from the top 53 bits of a 64-bit value. */
export function unitFromU64(x: bigint): number {
  return Number(BigInt.asUintN(64, x) >> 11n) / 2 ** 53;
}

/**
 * SFC32 (Chris Doty-Humphrey's small fast counter generator): 32-bit state words and
 * Math.imul-free arithmetic, fast enough to fill hundreds of MB of weights in seconds.
 */
export class Sfc32 {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = seed >>> 0;
    for (let i = 0; i < 15; i++) this.nextU32(); // warm up so nearby seeds diverge
  }

  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Fills `out` with uniform values in [-scale, scale). */
  fillUniform(out: Float32Array, scale: number): Float32Array {
    const k = (2 * scale) / 4294967296;
    for (let i = 0; i < out.length; i++) out[i] = this.nextU32() * k - scale;
    return out;
  }
}
