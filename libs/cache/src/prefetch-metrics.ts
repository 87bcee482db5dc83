import { Counter, type Registry } from "prom-client";
import type { CacheObserver } from "./tenant-figures";

/**
 * The prefetch series, per tenant (label `tenant`), in the worker's registry:
 * `lite_prefetch_bytes_total{tenant,tier}` (bytes prefetched on the tenant's behalf, by model
 * tier: with `lite_expert_cache_loads_total` it proves no tier outside a tenant's TierSet is
 * ever fetched for it), `lite_prefetch_wasted_bytes_total{tenant}` (evicted or lapsed before
 * a use) and `lite_prefetch_throttled_total{tenant}` (refused by its prefetchBytesPerSecond).
 * A tenant's series move only with its own prefetches and uses.
 */
export type PrefetchMetrics = Required<Pick<CacheObserver, "prefetched" | "prefetchWasted" | "prefetchThrottled">>;

function once<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as unknown as T) ?? make();
}

export function createPrefetchMetrics(
  registry: Registry,
  opts: { tenantLabel?: (tenantId: string) => string } = {},
): PrefetchMetrics {
  const label = opts.tenantLabel ?? ((t: string) => t);
  const bytes = once(
    registry,
    "lite_prefetch_bytes_total",
    () =>
      new Counter({
        name: "lite_prefetch_bytes_total",
        help: "expert bytes prefetched on a tenant's behalf, by model tier",
        labelNames: ["tenant", "tier"] as const,
        registers: [registry],
      }),
  );
  const wasted = once(
    registry,
    "lite_prefetch_wasted_bytes_total",
    () =>
      new Counter({
        name: "lite_prefetch_wasted_bytes_total",
        help: "prefetched expert bytes the tenant never used before they were evicted or its charge lapsed",
        labelNames: ["tenant"] as const,
        registers: [registry],
      }),
  );
  const throttled = once(
    registry,
    "lite_prefetch_throttled_total",
    () =>
      new Counter({
        name: "lite_prefetch_throttled_total",
        help: "predicted experts not prefetched because the tenant's prefetchBytesPerSecond bucket was empty",
        labelNames: ["tenant"] as const,
        registers: [registry],
      }),
  );
  return {
    prefetched: (tenant, tier, n) => bytes.inc({ tenant: label(tenant), tier }, n),
    prefetchWasted: (tenant, n) => wasted.inc({ tenant: label(tenant) }, n),
    prefetchThrottled: (tenant) => throttled.inc({ tenant: label(tenant) }),
  };
}
