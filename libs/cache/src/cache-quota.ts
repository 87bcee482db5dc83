/**
 * What the cache needs to know about a tenant: its per-worker memory quotas and its weight.
 * The worker implements the port over PostgreSQL with a short cache (apps/worker
 * expert-cache.ts); tests give a plain table.
 */
export interface TenantCacheQuota {
  /** bytes of HOT experts charged to the tenant in one worker; undefined = only the capacity bounds it */
  hotMemoryBytes?: number;
  /** bytes of WARM experts (HOT ones included: WARM ⊇ HOT) charged to the tenant in one worker; undefined = unbounded */
  warmMemoryBytes?: number;
  /** the tenant's weight (1..1000): its share of a full worker is capacity × weight ÷ Σ weights of the tenants present */
  weight: number;
  /** bytes per second its prefetches may read in one worker (a token bucket of one second); undefined = unbounded, 0 = none */
  prefetchBytesPerSecond?: number;
}

export interface CacheQuotaSource {
  /**
   * The tenant's quota now. May answer from a cache synchronously, or with a promise (a
   * database read): `acquire` never waits and uses the last answer it saw, `load` awaits it.
   */
  quotaOf(tenantId: string): TenantCacheQuota | Promise<TenantCacheQuota>;
}

/** A fixed table (tests, tools): tenants not in it get `fallback`. */
export function fixedQuotas(
  table: Record<string, TenantCacheQuota>,
  fallback: TenantCacheQuota = { weight: 1 },
): CacheQuotaSource {
  return { quotaOf: (tenantId) => table[tenantId] ?? fallback };
}
