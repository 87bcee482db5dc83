import { DomainError } from "@lite/core";

/**
 * Why the expert cache refused. Both are configuration facts (a capacity or a quota too
 * small for what is asked), not transient: retrying the same load cannot succeed.
 *  - CAPACITY_TOO_SMALL: the worker's HOT or WARM capacity cannot hold one token's experts
 *    (loads could evict each other forever) or one expert; code INTERNAL, for operators.
 *  - QUOTA_TOO_SMALL: a tenant's hotMemoryBytes / warmMemoryBytes cannot hold its share of
 *    one expert; code QUOTA_EXCEEDED, naming the limit.
 */
export type CacheErrorReason = "CAPACITY_TOO_SMALL" | "QUOTA_TOO_SMALL";

export class CacheError extends DomainError {
  readonly cacheReason: CacheErrorReason;

  constructor(reason: CacheErrorReason, message: string, context: Record<string, unknown> = {}) {
    super(reason === "QUOTA_TOO_SMALL" ? "QUOTA_EXCEEDED" : "INTERNAL", message, { reason, context });
    this.name = "CacheError";
    this.cacheReason = reason;
  }
}
