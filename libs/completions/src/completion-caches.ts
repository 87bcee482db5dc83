import { grantedKeyPrefix, type Invalidation, type TierInfo, type TierSetCache } from "@lite/auth";
import { TtlCache, type Clock } from "@lite/core";
import type { Prisma } from "@lite/db";
import { RateRefusals } from "./rate-refusals";

/** A tenant with its quota row, as createCompletion reads it. */
export type TenantWithQuota = Prisma.TenantGetPayload<{ include: { quota: true } }>;

/**
 * What createCompletion reads from PostgreSQL that changes rarely, cached per API process:
 * the tenant with its quota, its granted tiers per model, the default model. Every writer of
 * those (updateTenant, setQuota, suspendTenant, grantTier, revokeTier) publishes an
 * invalidation of the tenant to every API process (libs/auth Authenticator), which drops
 * its entries; `ttlMs` bounds what a lost message could leave. The worker re-checks grants
 * at every job start, so a revocation racing a create never runs an ungranted tier.
 */
export interface CompletionCaches extends TierSetCache {
  tenants: TtlCache<TenantWithQuota | null>;
  /** tenants refused for requestsPerMinute, until their bucket holds a request (rate-refusals.ts) */
  rateRefusals: RateRefusals;
  /** applies an invalidation published by a writer */
  invalidate(inv: Invalidation): void;
}

/** How long createCompletion serves a tenant, its quota and its grants without reading them again. */
export const COMPLETION_CACHE_TTL_MS = 5000;

export function createCompletionCaches(
  opts: { ttlMs?: number; maxEntries?: number; clock?: Clock } = {},
): CompletionCaches {
  const o = { ttlMs: opts.ttlMs ?? COMPLETION_CACHE_TTL_MS, maxEntries: opts.maxEntries ?? 10_000, clock: opts.clock };
  const tenants = new TtlCache<TenantWithQuota | null>(o);
  const granted = new TtlCache<TierInfo[]>(o);
  const defaultModel = new TtlCache<string | null>(o);
  const rateRefusals = new RateRefusals(o.maxEntries);
  return {
    tenants,
    granted,
    defaultModel,
    rateRefusals,
    invalidate(inv) {
      if (inv.kind === "key") return;
      if (inv.kind === "all") {
        tenants.invalidate();
        granted.invalidate();
        defaultModel.invalidate();
        rateRefusals.forget();
        return;
      }
      const prefix = grantedKeyPrefix(inv.tenantId);
      rateRefusals.forget(inv.tenantId);
      tenants.invalidate((k) => k === inv.tenantId);
      granted.invalidate((k) => k.startsWith(prefix));
    },
  };
}
