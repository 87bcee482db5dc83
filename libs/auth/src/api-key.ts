import { createHash, timingSafeEqual } from "node:crypto";
import { cryptoRandom, type RandomSource } from "@lite/core";

/**
 * API key secrets: `lite_` + 43 base62 characters (256 random bits, ≥ 128 required).
 * Only the SHA-256 of the whole secret is stored; the secret is shown once.
 */
export const KEY_PREFIX = "lite_";
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SECRET_CHARS = 43;
/** characters of the secret kept for display: `lite_` + 8 */
export const DISPLAY_PREFIX_CHARS = KEY_PREFIX.length + 8;

export interface GeneratedKey {
  secret: string;
  hash: string;
  prefix: string;
}

function base62(random: RandomSource, length: number): string {
  let out = "";
  // Rejection sampling keeps every character uniform (248 = 4 × 62).
  while (out.length < length) {
    for (const b of random.bytes(length * 2)) {
      if (b < 248) out += BASE62[b % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export function hashApiKey(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

export function displayPrefix(secret: string): string {
  return secret.slice(0, DISPLAY_PREFIX_CHARS);
}

export function generateApiKey(random: RandomSource = cryptoRandom): GeneratedKey {
  const secret = KEY_PREFIX + base62(random, SECRET_CHARS);
  return { secret, hash: hashApiKey(secret), prefix: displayPrefix(secret) };
}

/** Constant-time equality of two hex digests (or any two strings). */
export function constantTimeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, "utf8");
  const bb = Buffer.from(b, "utf8");
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** `Bearer <key>` or a bare key → the key; anything else → null. */
export function parseAuthorization(value: unknown): string | null {
  if (typeof value !== "string") return null;
  const trimmed = value.trim();
  const m = /^Bearer\s+(\S+)$/i.exec(trimmed);
  if (m) return m[1];
  if (/^\S+$/.test(trimmed) && trimmed.length > 0) return trimmed;
  return null;
}
