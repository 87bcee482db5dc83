import { randomBytes } from "node:crypto";

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

function encodeRandom(bytes: Buffer): string {
  let out = "";
  for (let i = 0; i < 16; i++) out += ALPHABET[bytes[i] % 32];
  return out;
}

export function newId(kind: IdKind, nowMs: number = Date.now()): string {
  return `${ID_PREFIXES[kind]}_${encodeTime(nowMs)}${encodeRandom(randomBytes(16))}`;
}

export function hasPrefix(kind: IdKind, id: string): boolean {
  return id.startsWith(`${ID_PREFIXES[kind]}_`);
}
