import { badInput, err, ok, type DomainError, type Result } from "@lite/core";
import { quantileMs, type LatencyCounts } from "./latency-histogram";
import {
  F,
  GAUGE_STALE_MS,
  LIVE_BUCKET_SECONDS,
  MAX_WINDOW_SECONDS,
  MIN_WINDOW_SECONDS,
  bucketStartOf,
} from "./live-metrics.fields";
import type { LiveMetricsKeys, LiveMetricsRedis } from "./live-metrics.recorder";

/**
 * One tenant's live metrics over a sliding window, summed across every process that
 * recorded them (live-metrics.fields.ts):
 *   1. the window's buckets are the LIVE_BUCKET_SECONDS buckets overlapping the last
 *      `windowSeconds` (so up to one bucket more than the window);
 *   2. counters are summed; latency histograms are summed bucket by bucket and the
 *      percentiles read from the sum (latency-histogram.ts), never averaged;
 *   3. byte gauges are summed over the processes whose reading is fresh; stale readings
 *      (a process that died) are deleted.
 * Only the tenant's own keys are read: nothing in the answer depends on another tenant.
 */

export interface LiveTenantMetrics {
  windowSeconds: number;
  requests: number;
  outputTokens: bigint;
  ttftP50Ms: number | null;
  ttftP99Ms: number | null;
  interTokenP50Ms: number | null;
  interTokenP99Ms: number | null;
  hotBytes: bigint;
  warmBytes: bigint;
  kvBytes: bigint;
  /** hits ÷ uses of the tenant's experts in the window; null without uses */
  expertHitRate: number | null;
  prefetchBytes: bigint;
  throttled: number;
  evictions: number;
}

/** A window the reader accepts: an integer MIN_WINDOW_SECONDS..MAX_WINDOW_SECONDS. */
export function checkWindowSeconds(windowSeconds: number): Result<number, DomainError> {
  if (!Number.isInteger(windowSeconds) || windowSeconds < MIN_WINDOW_SECONDS || windowSeconds > MAX_WINDOW_SECONDS)
    return err(
      badInput(
        "windowSeconds",
        `must be an integer from ${MIN_WINDOW_SECONDS} to ${MAX_WINDOW_SECONDS}, got ${windowSeconds}`,
      ),
    );
  return ok(windowSeconds);
}

export async function readLiveMetrics(
  redis: LiveMetricsRedis,
  keys: LiveMetricsKeys,
  tenantId: string,
  opts: { windowSeconds: number; nowMs: number },
): Promise<LiveTenantMetrics> {
  const last = bucketStartOf(opts.nowMs);
  const first = bucketStartOf(opts.nowMs - opts.windowSeconds * 1000 + 1);
  const bucketKeys: string[] = [];
  for (let b = first; b <= last; b += LIVE_BUCKET_SECONDS) bucketKeys.push(keys.liveMetricsBucket(tenantId, b));
  const gaugeKey = keys.liveMetricsGauges(tenantId);
  const [buckets, gauges] = await Promise.all([
    Promise.all(bucketKeys.map((k) => redis.hgetall(k))),
    redis.hgetall(gaugeKey),
  ]);

  const sums = new Map<string, bigint>();
  const ttft: LatencyCounts = new Map();
  const itl: LatencyCounts = new Map();
  for (const fields of buckets) {
    for (const [f, v] of Object.entries(fields)) {
      if (f.startsWith(F.ttftPrefix)) addTo(ttft, Number(f.slice(F.ttftPrefix.length)), Number(v));
      else if (f.startsWith(F.interTokenPrefix)) addTo(itl, Number(f.slice(F.interTokenPrefix.length)), Number(v));
      else sums.set(f, (sums.get(f) ?? 0n) + BigInt(v));
    }
  }
  const bytes = { hot: 0n, warm: 0n, kv: 0n };
  const stale: string[] = [];
  for (const [processId, value] of Object.entries(gauges)) {
    const [hot, warm, kv, atMs] = value.split(",");
    if (opts.nowMs - Number(atMs) > GAUGE_STALE_MS) {
      stale.push(processId);
      continue;
    }
    bytes.hot += BigInt(hot);
    bytes.warm += BigInt(warm);
    bytes.kv += BigInt(kv);
  }
  // Best effort: another reader may delete them first, or the process may write again.
  for (const p of stale) redis.hdel(gaugeKey, p).catch(() => undefined);

  const n = (f: string) => sums.get(f) ?? 0n;
  const uses = n(F.expertUses);
  return {
    windowSeconds: opts.windowSeconds,
    requests: Number(n(F.requests)),
    outputTokens: n(F.outputTokens),
    ttftP50Ms: quantileMs(ttft, 0.5),
    ttftP99Ms: quantileMs(ttft, 0.99),
    interTokenP50Ms: quantileMs(itl, 0.5),
    interTokenP99Ms: quantileMs(itl, 0.99),
    hotBytes: bytes.hot,
    warmBytes: bytes.warm,
    kvBytes: bytes.kv,
    expertHitRate: uses === 0n ? null : Number(n(F.expertHits)) / Number(uses),
    prefetchBytes: n(F.prefetchBytes),
    throttled: Number(n(F.throttled)),
    evictions: Number(n(F.evictions)),
  };
}

function addTo(counts: LatencyCounts, bucket: number, n: number): void {
  if (Number.isInteger(bucket) && n > 0) counts.set(bucket, (counts.get(bucket) ?? 0) + n);
}
