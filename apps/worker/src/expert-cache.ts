import type { Logger } from "pino";
import type { Registry } from "prom-client";
import {
  ExpertPrefetcher,
  ExpertResidency,
  TieredExpertStore,
  createCacheMetrics,
  createPrefetchMetrics,
  tokenWorkingSetBytes,
  type CacheQuotaSource,
  type EvictionPolicy,
  type TenantCacheQuota,
} from "@lite/cache";
import { systemClock, type Clock } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import type { CachingModelProvider } from "@lite/engine";
import type { ExpertStore, ExpertStoreContext } from "@lite/model";
import type { TenantGaugeReading, TenantLabels } from "@lite/telemetry";
import { DEFAULT_QUOTA } from "@lite/tenancy";

/**
 * The worker's expert cache (libs/cache): one ExpertResidency for every model the worker
 * loads, its Prometheus series, and its quota port over PostgreSQL.
 */

export interface ExpertCacheOptions {
  hotCapacityBytes: number;
  warmCapacityBytes: number;
  epochUses: number;
  quotaTtlMs: number;
  /** PREFETCH: predict each sequence's next-layer experts and fetch them within the tenant's prefetchBytesPerSecond; default true */
  prefetch?: boolean;
  /** EXPERT_CACHE_EVICTION: "fair" (default) or "lru", the memory benchmark's plain global-LRU baseline */
  eviction?: EvictionPolicy;
  /** whether a decode step wants the JS thread (the engine's `wantsThread`): expert loads' share binds only then */
  loadContended?: () => boolean;
}

export interface WorkerExpertCache {
  residency: ExpertResidency;
  /** the prefetch queue (PREFETCH); its `usage` holds each completion's PREFETCH_BYTES until recorded */
  prefetcher: ExpertPrefetcher;
  /** loadModel's `expertStore` option */
  storeFor(ctx: ExpertStoreContext): ExpertStore;
}

/**
 * `registry` undefined (METRICS=off): no Prometheus series, no observer on the residency
 * (its own per-tenant figures, which fairness and Tenant.metrics read, are kept regardless).
 */
export function createWorkerExpertCache(
  opts: ExpertCacheOptions,
  db: Pick<PrismaClient, "tenant">,
  registry: Registry | undefined,
  tenantLabels?: TenantLabels,
): WorkerExpertCache {
  if (opts.warmCapacityBytes < opts.hotCapacityBytes)
    throw new Error(
      `config error: WARM_CAPACITY_BYTES (${opts.warmCapacityBytes}) must be at least HOT_CAPACITY_BYTES (${opts.hotCapacityBytes}): every HOT expert keeps its bytes WARM`,
    );
  const metrics =
    registry &&
    createCacheMetrics(
      registry,
      tenantLabels && { tenantLabel: (t) => tenantLabels.label(t), tenantGaugeLabel: (t) => tenantLabels.peek(t) },
    );
  const quotas = prismaCacheQuotas(db, { ttlMs: opts.quotaTtlMs });
  const residency = new ExpertResidency({
    hotCapacityBytes: opts.hotCapacityBytes,
    warmCapacityBytes: opts.warmCapacityBytes,
    epochUses: opts.epochUses,
    eviction: opts.eviction,
    loadContended: opts.loadContended,
    quotas,
    observer: registry &&
      metrics && {
        ...metrics,
        ...createPrefetchMetrics(registry, tenantLabels && { tenantLabel: (t) => tenantLabels.label(t) }),
      },
  });
  metrics?.readFrom(() => residency.figures());
  const prefetcher = new ExpertPrefetcher(residency, quotas, { enabled: opts.prefetch ?? true });
  return { residency, prefetcher, storeFor: (ctx) => new TieredExpertStore(residency, ctx, prefetcher) };
}

/**
 * What the live tenant metrics (Tenant.metrics) read of this worker at each flush, per tenant:
 * the whole bytes of the cache entries it uses (not its charged part, which would show how
 * many other tenants share them), its uses and hits (a first use since the expert became HOT
 * is a miss whoever made it HOT), the evictions of its entries that its own loads or quota
 * caused (those other tenants' loads caused would reveal their activity; Prometheus has them),
 * the bytes prefetched on its behalf, and the KV bytes its own sequences hold (`kvBytes`,
 * from the worker's KvLedger).
 */
export function liveCacheReadings(
  residency: ExpertResidency,
  kvBytes: ReadonlyMap<string, number> = new Map(),
): TenantGaugeReading[] {
  const hot = residency.heldBytes("HOT");
  const warm = residency.heldBytes("WARM");
  const readings: TenantGaugeReading[] = residency.figures().map((f) => ({
    tenantId: f.tenantId,
    hotBytes: hot.get(f.tenantId) ?? 0,
    warmBytes: warm.get(f.tenantId) ?? 0,
    kvBytes: kvBytes.get(f.tenantId) ?? 0,
    expertUses: f.hits + f.misses,
    expertHits: f.hits,
    evictions: f.evictionsSuffered - f.evictionsSufferedFromOthers,
    prefetchBytes: Object.values(f.prefetchBytesByTier).reduce((a, b) => a + b, 0),
  }));
  const seen = new Set(readings.map((r) => r.tenantId));
  for (const [tenantId, bytes] of kvBytes)
    if (!seen.has(tenantId)) readings.push({ tenantId, hotBytes: 0, warmBytes: 0, kvBytes: bytes });
  return readings;
}

/**
 * Each model, as it loads, is checked against the capacities: one token of it must fit, or
 * its loads could evict each other forever. A model that does not fit is closed and every
 * request for it fails with the reason (at start when it is preloaded).
 */
export function capacityCheckedModels(
  models: CachingModelProvider,
  residency: ExpertResidency,
  log: Logger,
): CachingModelProvider {
  const checked = new Map<string, Promise<Awaited<ReturnType<CachingModelProvider["get"]>>>>();
  return {
    get(modelName) {
      let p = checked.get(modelName);
      if (!p) {
        p = models.get(modelName).then((m) => {
          const tokenBytes = tokenWorkingSetBytes(m);
          residency.assertFits(modelName, tokenBytes);
          log.info(
            {
              model: modelName,
              tokenBytes,
              hotCapacityBytes: residency.capacity("HOT"),
              warmCapacityBytes: residency.capacity("WARM"),
            },
            "expert cache fits the model",
          );
          return m;
        });
        p.catch(() => checked.delete(modelName));
        checked.set(modelName, p);
      }
      return p;
    },
    close: () => models.close(),
  };
}

/**
 * Quotas and weights from PostgreSQL, kept `ttlMs` per tenant. Invalidation is by time
 * only: a quota or weight changed through the API takes effect in every worker within the
 * TTL (EXPERT_CACHE_QUOTA_TTL_SECONDS). A stale answer is served while it is read again;
 * a tenant never read waits for its first read (only `load` waits; `acquire` answers
 * "not yet"). A tenant without a Quota row has DEFAULT_QUOTA, as everywhere.
 */
export function prismaCacheQuotas(
  db: Pick<PrismaClient, "tenant">,
  opts: { ttlMs: number; clock?: Clock },
): CacheQuotaSource {
  const clock = opts.clock ?? systemClock;
  const kept = new Map<string, { quota: TenantCacheQuota; atMs: number }>();
  const reading = new Map<string, Promise<TenantCacheQuota>>();
  const read = (tenantId: string): Promise<TenantCacheQuota> => {
    let p = reading.get(tenantId);
    if (!p) {
      p = db.tenant
        .findUnique({
          where: { id: tenantId },
          select: {
            weight: true,
            quota: { select: { hotMemoryBytes: true, warmMemoryBytes: true, prefetchBytesPerSecond: true } },
          },
        })
        .then((row) => {
          const quota = {
            hotMemoryBytes: toBytes(row?.quota?.hotMemoryBytes ?? DEFAULT_QUOTA.hotMemoryBytes),
            warmMemoryBytes: toBytes(row?.quota?.warmMemoryBytes ?? DEFAULT_QUOTA.warmMemoryBytes),
            prefetchBytesPerSecond: toBytes(row?.quota?.prefetchBytesPerSecond ?? DEFAULT_QUOTA.prefetchBytesPerSecond),
            weight: row?.weight ?? 1,
          };
          kept.set(tenantId, { quota, atMs: clock.nowMs() });
          return quota;
        })
        .finally(() => reading.delete(tenantId));
      reading.set(tenantId, p);
    }
    return p;
  };
  return {
    quotaOf(tenantId) {
      const k = kept.get(tenantId);
      if (!k) return read(tenantId);
      // Stale: served while read again (a failed read keeps the last answer).
      if (clock.nowMs() - k.atMs >= opts.ttlMs) read(tenantId).catch(() => undefined);
      return k.quota;
    },
  };
}

function toBytes(v: bigint): number {
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}
