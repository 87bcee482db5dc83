/**
 * The shape of live tenant metrics in Redis, shared by the recorder (every API and worker
 * process) and the reader (the API's `Tenant.metrics` and `tenantMetrics`).
 *
 * - Counters and latency histograms: one hash per tenant per LIVE_BUCKET_SECONDS time bucket
 *   (RedisKeys.liveMetricsBucket, under the tenant's `{t:<id>}` hash tag), fields below,
 *   each added to with HINCRBY by every process, expiring LIVE_RETAIN_SECONDS after the
 *   bucket's last write. A window sums the buckets it overlaps: additive across processes.
 * - Byte gauges: one hash per tenant (RedisKeys.liveMetricsGauges), field = process id,
 *   value `hot,warm,kv,writtenAtMs`; the reader sums the processes whose value is fresher
 *   than GAUGE_STALE_MS (a process that died stops counting after that).
 */

/** Width of one time bucket, seconds (publishers and readers must agree: a constant). */
export const LIVE_BUCKET_SECONDS = 5;
/** Default and largest window a reader may ask for, seconds. */
export const DEFAULT_WINDOW_SECONDS = 60;
export const MIN_WINDOW_SECONDS = LIVE_BUCKET_SECONDS;
export const MAX_WINDOW_SECONDS = 300;
/** Buckets expire this long after their last write, seconds. */
export const LIVE_RETAIN_SECONDS = MAX_WINDOW_SECONDS + 2 * LIVE_BUCKET_SECONDS;
/** A process's byte gauges older than this no longer count, ms. */
export const GAUGE_STALE_MS = 10_000;

export const F = {
  requests: "req",
  throttled: "thr",
  outputTokens: "out",
  expertUses: "use",
  expertHits: "hit",
  evictions: "ev",
  prefetchBytes: "pf",
  /** + bucket index of latency-histogram.ts */
  ttftPrefix: "ttft:",
  interTokenPrefix: "itl:",
} as const;

/** Bucket start (s) of a time in ms. */
export function bucketStartOf(ms: number): number {
  const s = Math.floor(ms / 1000);
  return s - (s % LIVE_BUCKET_SECONDS);
}
