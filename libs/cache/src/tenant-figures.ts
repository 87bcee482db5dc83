import type { Residency } from "./cache-entry";

/**
 * Per-tenant counters of one worker's cache. A tenant's figures move only with its own uses,
 * loads and the evictions of entries it was charged for, so they reveal nothing of another
 * tenant's residency: a use counts as a hit only if the tenant itself used the expert since
 * it became HOT (its first use is a miss even when another tenant made it HOT, as the
 * timing defence treats it).
 */
export interface TenantCacheFigures {
  tenantId: string;
  /** bytes of HOT entries charged to the tenant now */
  hotBytes: number;
  /** bytes of WARM entries (HOT included) charged to the tenant now */
  warmBytes: number;
  /** uses (leases taken) that were not the tenant's first since the expert became HOT */
  hits: number;
  /** the tenant's first uses since the expert became HOT */
  misses: number;
  /** hits ÷ (hits + misses); 0 before any use */
  hitRate: number;
  /** entries the tenant was charged for that were evicted (HOT → WARM or WARM → COLD) */
  evictionsSuffered: number;
  /** of those, evictions caused by other tenants' loads (its own quota or loads excluded) */
  evictionsSufferedFromOthers: number;
  /** evictions the tenant's loads and uses caused (its own entries included) */
  evictionsCaused: number;
  /** promotions to HOT made on the tenant's behalf (COLD → HOT or WARM → HOT) by loads; a prefetch's are in prefetchBytesByTier */
  loads: number;
  /** the same by model tier id: proves no tier the tenant is not granted is loaded for it */
  loadsByTier: Record<string, number>;
  /** bytes of the experts prefetched on the tenant's behalf (its PREFETCH_BYTES), by model tier id */
  prefetchBytesByTier: Record<string, number>;
  /** of those, bytes the tenant never used before they were evicted or its charge for them lapsed */
  prefetchWastedBytes: number;
  /** predicted experts not prefetched because its prefetchBytesPerSecond bucket was empty */
  prefetchThrottled: number;
  /** prefetched experts the tenant then used */
  prefetchUsed: number;
}

export type TenantCounters = Omit<TenantCacheFigures, "tenantId" | "hotBytes" | "warmBytes" | "hitRate">;

/** Observes the same events as the figures (the worker's Prometheus counters). */
export interface CacheObserver {
  used(tenantId: string, hit: boolean): void;
  loaded(tenantId: string, tierId: string): void;
  evicted(tenantId: string, level: Residency, role: "suffered" | "caused"): void;
  /** a prefetch on the tenant's behalf (bytes of the expert, its model tier) */
  prefetched?(tenantId: string, tierId: string, bytes: number): void;
  prefetchWasted?(tenantId: string, bytes: number): void;
  prefetchThrottled?(tenantId: string): void;
}

export class TenantFigureBook {
  private readonly counters = new Map<string, TenantCounters>();

  constructor(private readonly observer?: CacheObserver) {}

  private of(tenantId: string): TenantCounters {
    let c = this.counters.get(tenantId);
    if (!c) {
      c = {
        hits: 0,
        misses: 0,
        evictionsSuffered: 0,
        evictionsSufferedFromOthers: 0,
        evictionsCaused: 0,
        loads: 0,
        loadsByTier: {},
        prefetchBytesByTier: {},
        prefetchWastedBytes: 0,
        prefetchThrottled: 0,
        prefetchUsed: 0,
      };
      this.counters.set(tenantId, c);
    }
    return c;
  }

  used(tenantId: string, hit: boolean): void {
    const c = this.of(tenantId);
    if (hit) c.hits++;
    else c.misses++;
    this.observer?.used(tenantId, hit);
  }

  loaded(tenantId: string, tierId: string): void {
    const c = this.of(tenantId);
    c.loads++;
    c.loadsByTier[tierId] = (c.loadsByTier[tierId] ?? 0) + 1;
    this.observer?.loaded(tenantId, tierId);
  }

  evicted(level: Residency, sufferers: Iterable<string>, causers: ReadonlySet<string>): void {
    for (const t of sufferers) {
      const c = this.of(t);
      c.evictionsSuffered++;
      if (!causers.has(t)) c.evictionsSufferedFromOthers++;
      this.observer?.evicted(t, level, "suffered");
    }
    for (const t of causers) {
      this.of(t).evictionsCaused++;
      this.observer?.evicted(t, level, "caused");
    }
  }

  prefetched(tenantId: string, tierId: string, bytes: number): void {
    const c = this.of(tenantId);
    c.prefetchBytesByTier[tierId] = (c.prefetchBytesByTier[tierId] ?? 0) + bytes;
    this.observer?.prefetched?.(tenantId, tierId, bytes);
  }

  prefetchWasted(tenantId: string, bytes: number): void {
    this.of(tenantId).prefetchWastedBytes += bytes;
    this.observer?.prefetchWasted?.(tenantId, bytes);
  }

  prefetchThrottled(tenantId: string): void {
    this.of(tenantId).prefetchThrottled++;
    this.observer?.prefetchThrottled?.(tenantId);
  }

  prefetchUsed(tenantId: string): void {
    this.of(tenantId).prefetchUsed++;
  }

  tenants(): string[] {
    return [...this.counters.keys()];
  }

  figures(tenantId: string, bytes: { hotBytes: number; warmBytes: number }): TenantCacheFigures {
    const c = this.of(tenantId);
    const uses = c.hits + c.misses;
    return {
      tenantId,
      ...bytes,
      ...c,
      loadsByTier: { ...c.loadsByTier },
      prefetchBytesByTier: { ...c.prefetchBytesByTier },
      hitRate: uses === 0 ? 0 : c.hits / uses,
    };
  }
}
