import { randomFillSync } from "node:crypto";

/**
 * Prefixed, time-sortable ids: `<prefix>_<10 chars of ms timestamp><16 chars of randomness>`,
 * Crockford base32 (as ULID). Newest-first listings sort by id.
 */
export const ID_PREFIXES = {
  tenant: "ten",
  apiKey: "key",
  completion: "cmp",
  model: "mdl",
  tier: "tier",
  priceBook: "pb",
  usage: "use",
  request: "req",
  audit: "aud",
  dataKey: "dk",
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";

function encodeTime(ms: number): string {
  let out = "";
  let n = ms;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[n % 32] + out;
    n = Math.floor(n / 32);
  }
  return out;
}

// Random bytes drawn 4 KiB at a time: one call into OpenSSL per 256 ids instead of per id
// (ids are minted on every request, refusals included).
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

function encodeRandom(): string {
  if (poolAt + 16 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  let out = "";
  for (let i = 0; i < 16; i++) out += ALPHABET[pool[poolAt + i] % 32];
  poolAt += 16;
  return out;
}

export function newId(kind: IdKind, nowMs: number = Date.now()): string {
  return `${ID_PREFIXES[kind]}_${encodeTime(nowMs)}${encodeRandom()}`;
}

export function hasPrefix(kind: IdKind, id: string): boolean {
  return id.startsWith(`${ID_PREFIXES[kind]}_`);
}
