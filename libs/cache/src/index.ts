/**
 * @lite/cache — the worker's expert cache behind the ExpertStore interface of @lite/model:
 * HOT/WARM/COLD residency under worker-wide capacities, per-tenant charges within per-worker
 * quotas, fair deterministic eviction, per-tenant figures and metrics (README.md).
 */
export { TieredExpertStore } from "./tiered-expert-store";
export { ExpertResidency } from "./expert-residency";
export {
  DEFAULT_EPOCH_USES,
  DEFAULT_LOAD_BURST_MS,
  DEFAULT_LOAD_SHARE,
  type EvictionPolicy,
  type ExpertResidencyOptions,
  type PrefetchOutcome,
  type ResidencyView,
  type ResidentExpert,
} from "./expert-residency.types";
export { RESIDENCIES, type Residency } from "./cache-entry";
export { fixedQuotas, type CacheQuotaSource, type TenantCacheQuota } from "./cache-quota";
export { CacheError, type CacheErrorReason } from "./cache.errors";
export type { CacheObserver, TenantCacheFigures } from "./tenant-figures";
export { createCacheMetrics, type CacheMetrics, type CacheMetricsOptions } from "./cache-metrics";
export { tokenWorkingSetBytes, totalExpertBytes } from "./working-set";
export { ExpertPrefetcher, type ExpertPrefetcherOptions } from "./expert-prefetcher";
export { createPrefetchMetrics, type PrefetchMetrics } from "./prefetch-metrics";
export { PrefetchUsageBook } from "./prefetch-usage";
export { LoadGovernor, type LoadGovernorOptions } from "./load-governor";
