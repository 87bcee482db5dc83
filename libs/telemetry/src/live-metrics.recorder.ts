import { systemClock, type Clock } from "@lite/core";
import { latencyBucketOf } from "./latency-histogram";
import { F, LIVE_RETAIN_SECONDS, bucketStartOf } from "./live-metrics.fields";

/**
 * One process's publisher of live per-tenant metrics (live-metrics.fields.ts for the Redis
 * shape). Events are added up in memory and written once per `flushIntervalMs`:
 *   1. each (tenant, time bucket) with events gets its fields HINCRBY'd and its expiry set;
 *   2. each tenant's byte gauges (from `gauges()`, read at flush) are written under this
 *      process's id when non-zero, or zero once when they have just become zero;
 *   3. cumulative counters a source reports (the expert cache's hits, uses, evictions,
 *      prefetched bytes) are
 *      turned into increments by their difference since the previous flush;
 *   4. a failed write puts its increments back for the next flush (buckets past the retained
 *      window are dropped); stop() flushes once more and removes this process's gauges.
 * Every key is one tenant's (hash tag `{t:<id>}`): nothing is ever read or written across
 * tenants, which keeps the commands legal on Redis Cluster.
 */

/** The Redis commands the recorder and reader use (ioredis Redis and Cluster both have them). */
export interface LiveMetricsRedis {
  hincrby(key: string, field: string, increment: number): Promise<unknown>;
  expire(key: string, seconds: number): Promise<unknown>;
  hset(key: string, field: string, value: string): Promise<unknown>;
  hdel(key: string, field: string): Promise<unknown>;
  hgetall(key: string): Promise<Record<string, string>>;
}

/** libs/redis RedisKeys, the two keys used here. */
export interface LiveMetricsKeys {
  liveMetricsBucket(tenantId: string, bucketStartSeconds: number): string;
  liveMetricsGauges(tenantId: string): string;
}

/** What a process reports of one tenant at each flush. */
export interface TenantGaugeReading {
  tenantId: string;
  hotBytes: number;
  warmBytes: number;
  kvBytes: number;
  /** cumulative since the process started (step 3) */
  expertUses?: number;
  expertHits?: number;
  evictions?: number;
  /** cumulative bytes prefetched for the tenant (the cache's prefetch, once it exists) */
  prefetchBytes?: number;
}

export interface LiveMetricsRecorderOptions {
  redis: LiveMetricsRedis;
  keys: LiveMetricsKeys;
  /** this process's id (worker id, or `api:<host>-<pid>`): the field of its gauges */
  processId: string;
  clock?: Clock;
  /** how often events are written to Redis, ms (default 1000) */
  flushIntervalMs?: number;
  onError?(e: unknown): void;
}

type Fields = Map<string, number>;
type Cumulative = { uses: number; hits: number; evictions: number; prefetch: number };

export class LiveMetricsRecorder {
  /** tenant → bucket start (s) → field → increment */
  private pending = new Map<string, Map<number, Fields>>();
  private readonly lastGauge = new Map<string, string>();
  private readonly lastCumulative = new Map<string, Cumulative>();
  private gaugeSource: () => Iterable<TenantGaugeReading> = () => [];
  private readonly clock: Clock;

  constructor(private readonly opts: LiveMetricsRecorderOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  request(tenantId: string): void {
    this.add(tenantId, F.requests, 1);
  }

  throttled(tenantId: string): void {
    this.add(tenantId, F.throttled, 1);
  }

  outputTokens(tenantId: string, n = 1): void {
    this.add(tenantId, F.outputTokens, n);
  }

  ttftMs(tenantId: string, ms: number): void {
    this.add(tenantId, F.ttftPrefix + latencyBucketOf(ms), 1);
  }

  interTokenMs(tenantId: string, ms: number, n = 1): void {
    this.add(tenantId, F.interTokenPrefix + latencyBucketOf(ms), n);
  }

  prefetchBytes(tenantId: string, bytes: number): void {
    this.add(tenantId, F.prefetchBytes, bytes);
  }

  /** The byte gauges and cumulative cache counters, read at each flush. */
  readGauges(source: () => Iterable<TenantGaugeReading>): void {
    this.gaugeSource = source;
  }

  private add(tenantId: string, field: string, n: number): void {
    if (n <= 0) return;
    const bucket = bucketStartOf(this.clock.nowMs());
    let byBucket = this.pending.get(tenantId);
    if (!byBucket) this.pending.set(tenantId, (byBucket = new Map()));
    let fields = byBucket.get(bucket);
    if (!fields) byBucket.set(bucket, (fields = new Map()));
    fields.set(field, (fields.get(field) ?? 0) + n);
  }

  /** Writes what was added since the last flush (steps 1–4); never throws. */
  async flush(): Promise<void> {
    this.readCumulative();
    const batch = this.pending;
    this.pending = new Map();
    const { redis, keys } = this.opts;
    const writes: Array<Promise<unknown>> = [];
    for (const [tenantId, byBucket] of batch) {
      for (const [bucket, fields] of byBucket) {
        const key = keys.liveMetricsBucket(tenantId, bucket);
        const done = Promise.all([...fields].map(([f, n]) => redis.hincrby(key, f, n))).then(() =>
          redis.expire(key, LIVE_RETAIN_SECONDS),
        );
        writes.push(done.catch((e) => this.putBack(tenantId, bucket, fields, e)));
      }
    }
    writes.push(...this.writeGauges());
    await Promise.all(writes);
  }

  private readCumulative(): void {
    for (const g of this.gaugeSource()) {
      if (g.expertUses === undefined && g.prefetchBytes === undefined) continue;
      const now: Cumulative = {
        uses: g.expertUses ?? 0,
        hits: g.expertHits ?? 0,
        evictions: g.evictions ?? 0,
        prefetch: g.prefetchBytes ?? 0,
      };
      const before = this.lastCumulative.get(g.tenantId) ?? { uses: 0, hits: 0, evictions: 0, prefetch: 0 };
      this.add(g.tenantId, F.expertUses, now.uses - before.uses);
      this.add(g.tenantId, F.expertHits, now.hits - before.hits);
      this.add(g.tenantId, F.evictions, now.evictions - before.evictions);
      this.add(g.tenantId, F.prefetchBytes, now.prefetch - before.prefetch);
      this.lastCumulative.set(g.tenantId, now);
    }
  }

  private writeGauges(): Array<Promise<unknown>> {
    const { redis, keys, processId } = this.opts;
    const writes: Array<Promise<unknown>> = [];
    const seen = new Set<string>();
    for (const g of this.gaugeSource()) {
      seen.add(g.tenantId);
      const zero = g.hotBytes === 0 && g.warmBytes === 0 && g.kvBytes === 0;
      if (zero && !this.lastGauge.has(g.tenantId)) continue;
      const key = keys.liveMetricsGauges(g.tenantId);
      const value = `${g.hotBytes},${g.warmBytes},${g.kvBytes},${this.clock.nowMs()}`;
      if (zero) this.lastGauge.delete(g.tenantId);
      else this.lastGauge.set(g.tenantId, value);
      const w = (zero ? redis.hdel(key, processId) : redis.hset(key, processId, value)).then(() =>
        redis.expire(key, LIVE_RETAIN_SECONDS),
      );
      writes.push(w.catch((e) => this.opts.onError?.(e)));
    }
    // A tenant the source no longer lists has no bytes here any more.
    for (const t of [...this.lastGauge.keys()]) {
      if (seen.has(t)) continue;
      this.lastGauge.delete(t);
      writes.push(redis.hdel(keys.liveMetricsGauges(t), processId).catch((e) => this.opts.onError?.(e)));
    }
    return writes;
  }

  private putBack(tenantId: string, bucket: number, fields: Fields, e: unknown): void {
    this.opts.onError?.(e);
    if (bucket * 1000 < this.clock.nowMs() - LIVE_RETAIN_SECONDS * 1000) return;
    let byBucket = this.pending.get(tenantId);
    if (!byBucket) this.pending.set(tenantId, (byBucket = new Map()));
    const into = byBucket.get(bucket) ?? new Map<string, number>();
    for (const [f, n] of fields) into.set(f, (into.get(f) ?? 0) + n);
    byBucket.set(bucket, into);
  }

  /** Flushes every `flushIntervalMs` until stopped; stop() flushes once more and removes this process's gauges. */
  start(): { stop(): Promise<void> } {
    let flushing: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      flushing = flushing.then(() => this.flush());
    }, this.opts.flushIntervalMs ?? 1000);
    timer.unref();
    return {
      stop: async () => {
        clearInterval(timer);
        await flushing;
        await this.flush();
        const { redis, keys, processId } = this.opts;
        await Promise.all(
          [...this.lastGauge.keys()].map((t) =>
            redis.hdel(keys.liveMetricsGauges(t), processId).catch((e) => this.opts.onError?.(e)),
          ),
        );
        this.lastGauge.clear();
      },
    };
  }
}
