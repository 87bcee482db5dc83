import { badInput, err, ok, type DomainError, type OverQuotaPolicy, type Result } from "@lite/core";

/**
 * A tenant's quota: memory and prefetch limits (bytes, per worker process), admission limits
 * (tokens and requests), and what happens over them. Every field is a positive integer:
 * there is no "unlimited".
 */
export interface Quota {
  hotMemoryBytes: bigint;
  warmMemoryBytes: bigint;
  kvCacheBytes: bigint;
  prefetchBytesPerSecond: bigint;
  maxOutstandingTokens: number;
  maxConcurrentRequests: number;
  requestsPerMinute: number;
  tokensPerMinute: number;
  overQuotaPolicy: OverQuotaPolicy;
}

/**
 * RUNTIME.md "Limits and defaults": the quota of a tenant created without one, and of a
 * tenant whose Quota row is missing. The only definition: new Quota rows are written from it
 * in full, and a test checks the Prisma schema's column defaults still equal it.
 */
export const DEFAULT_QUOTA: Readonly<Quota> = Object.freeze({
  hotMemoryBytes: 256n * 1024n * 1024n,
  warmMemoryBytes: 1024n * 1024n * 1024n,
  kvCacheBytes: 64n * 1024n * 1024n,
  prefetchBytesPerSecond: 256n * 1024n * 1024n,
  maxOutstandingTokens: 65536,
  maxConcurrentRequests: 32,
  requestsPerMinute: 600,
  tokensPerMinute: 200000,
  overQuotaPolicy: "REJECT",
});

/** The fields to change; absent = unchanged. */
export type QuotaPatch = Partial<Quota>;

/** What a caller sends: null or absent = unchanged. */
export type QuotaInput = { [K in keyof Quota]?: Quota[K] | null };

/** A tenant's quota in force: its row, else the default. */
export function effectiveQuota<Q extends Quota>(row: Q | null | undefined): Q | Readonly<Quota> {
  return row ?? DEFAULT_QUOTA;
}

/** PostgreSQL BIGINT's maximum. */
const MAX_BIGINT_COLUMN = 2n ** 63n - 1n;
const BIG_FIELDS = ["hotMemoryBytes", "warmMemoryBytes", "kvCacheBytes", "prefetchBytesPerSecond"] as const;
const INT_FIELDS = ["maxOutstandingTokens", "maxConcurrentRequests", "requestsPerMinute", "tokensPerMinute"] as const;

/** The patch a quota input asks for, or BAD_USER_INPUT naming `<field>.<name>` of the first bad value. */
export function validateQuota(input: QuotaInput | null | undefined, field: string): Result<QuotaPatch, DomainError> {
  const patch: QuotaPatch = {};
  if (!input) return ok(patch);
  for (const k of BIG_FIELDS) {
    const v = input[k];
    if (v === null || v === undefined) continue;
    if (v < 1n || v > MAX_BIGINT_COLUMN)
      return err(badInput(`${field}.${k}`, `must be a positive integer up to ${MAX_BIGINT_COLUMN}`));
    patch[k] = v;
  }
  for (const k of INT_FIELDS) {
    const v = input[k];
    if (v === null || v === undefined) continue;
    if (!Number.isInteger(v) || v < 1) return err(badInput(`${field}.${k}`, "must be a positive integer"));
    patch[k] = v;
  }
  if (input.overQuotaPolicy) patch.overQuotaPolicy = input.overQuotaPolicy;
  return ok(patch);
}
