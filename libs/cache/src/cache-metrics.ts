import { Counter, Gauge, type Registry } from "prom-client";
import type { Residency } from "./cache-entry";
import type { TenantCacheFigures, CacheObserver } from "./tenant-figures";

/**
 * The expert cache's Prometheus series, per tenant (label `tenant`), in the worker's
 * registry. Counters follow the events (a CacheObserver); byte gauges read the charges when
 * scraped. Each tenant's series move only with its own uses, loads and evictions of entries
 * it was charged for (tenant-figures.ts), so none exposes another tenant's residency.
 */
export interface CacheMetrics extends CacheObserver {
  /** registers the byte gauges' source (the residency, created after the observer) */
  readFrom(figures: () => TenantCacheFigures[]): void;
}

/** Registers metrics once per registry (a test may compose twice on one registry). */
function once<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as unknown as T) ?? make();
}

export interface CacheMetricsOptions {
  /** the bounded `tenant` label (libs/telemetry TenantLabels.label / .peek); default the id */
  tenantLabel?: (tenantId: string) => string;
  tenantGaugeLabel?: (tenantId: string) => string;
}

export function createCacheMetrics(registry: Registry, opts: CacheMetricsOptions = {}): CacheMetrics {
  const label = opts.tenantLabel ?? ((t: string) => t);
  const gaugeLabel = opts.tenantGaugeLabel ?? ((t: string) => t);
  let source: () => TenantCacheFigures[] = () => [];
  const uses = once(
    registry,
    "lite_expert_cache_uses_total",
    () =>
      new Counter({
        name: "lite_expert_cache_uses_total",
        help: "expert uses by tenant; result hit (used by the tenant since it became HOT) or miss (its first use)",
        labelNames: ["tenant", "result"] as const,
        registers: [registry],
      }),
  );
  const loads = once(
    registry,
    "lite_expert_cache_loads_total",
    () =>
      new Counter({
        name: "lite_expert_cache_loads_total",
        help: "experts made HOT on a tenant's behalf, by model tier",
        labelNames: ["tenant", "tier"] as const,
        registers: [registry],
      }),
  );
  const evictions = once(
    registry,
    "lite_expert_cache_evictions_total",
    () =>
      new Counter({
        name: "lite_expert_cache_evictions_total",
        help: "evictions by tenant, level left (HOT: to WARM, WARM: to COLD) and role (suffered: its entry; caused: its load)",
        labelNames: ["tenant", "level", "role"] as const,
        registers: [registry],
      }),
  );
  once(
    registry,
    "lite_expert_cache_bytes",
    () =>
      new Gauge({
        name: "lite_expert_cache_bytes",
        help: "expert bytes charged to the tenant in this worker, by level (WARM includes HOT)",
        labelNames: ["tenant", "level"] as const,
        registers: [registry],
        collect() {
          this.reset();
          // Tenants without their own label add up under theirs (`other`).
          for (const f of source()) {
            const tenant = gaugeLabel(f.tenantId);
            this.inc({ tenant, level: "HOT" }, f.hotBytes);
            this.inc({ tenant, level: "WARM" }, f.warmBytes);
          }
        },
      }),
  );
  return {
    readFrom: (figures) => {
      source = figures;
    },
    used: (tenant, hit) => uses.inc({ tenant: label(tenant), result: hit ? "hit" : "miss" }),
    loaded: (tenant, tier) => loads.inc({ tenant: label(tenant), tier }),
    evicted: (tenant, level: Residency, role) => evictions.inc({ tenant: label(tenant), level, role }),
  };
}
