import { badInput, type OverQuotaPolicy } from "@lite/core";
import type { QuotaInput } from "./tenant.input";

/** RUNTIME.md "Limits and defaults"; the Prisma schema's column defaults say the same. */
export const DEFAULT_QUOTA = {
  hotMemoryBytes: 256n * 1024n * 1024n,
  warmMemoryBytes: 1024n * 1024n * 1024n,
  kvCacheBytes: 64n * 1024n * 1024n,
  prefetchBytesPerSecond: 256n * 1024n * 1024n,
  maxOutstandingTokens: 65536,
  maxConcurrentRequests: 32,
  requestsPerMinute: 600,
  tokensPerMinute: 200000,
  overQuotaPolicy: "REJECT" as const,
};

const MAX_BIGINT_COLUMN = 2n ** 63n - 1n;
const BIG_FIELDS = ["hotMemoryBytes", "warmMemoryBytes", "kvCacheBytes", "prefetchBytesPerSecond"] as const;
const INT_FIELDS = ["maxOutstandingTokens", "maxConcurrentRequests", "requestsPerMinute", "tokensPerMinute"] as const;

export interface QuotaPatch {
  hotMemoryBytes?: bigint;
  warmMemoryBytes?: bigint;
  kvCacheBytes?: bigint;
  prefetchBytesPerSecond?: bigint;
  maxOutstandingTokens?: number;
  maxConcurrentRequests?: number;
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  overQuotaPolicy?: OverQuotaPolicy;
}

/** Quota fields are positive integers (there is no "unlimited"); null/absent = unchanged. */
export function validateQuota(input: QuotaInput | null | undefined, field: string): QuotaPatch {
  const patch: QuotaPatch = {};
  if (!input) return patch;
  for (const k of BIG_FIELDS) {
    const v = input[k];
    if (v === null || v === undefined) continue;
    if (v < 1n || v > MAX_BIGINT_COLUMN)
      throw badInput(`${field}.${k}`, `must be a positive integer up to ${MAX_BIGINT_COLUMN}`);
    patch[k] = v;
  }
  for (const k of INT_FIELDS) {
    const v = input[k];
    if (v === null || v === undefined) continue;
    if (!Number.isInteger(v) || v < 1) throw badInput(`${field}.${k}`, "must be a positive integer");
    patch[k] = v;
  }
  if (input.overQuotaPolicy) patch.overQuotaPolicy = input.overQuotaPolicy;
  return patch;
}
