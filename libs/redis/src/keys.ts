/**
 * The one module that builds Redis keys.
 *
 * - Every key starts with the deployment prefix (tests use a unique one each).
 * - Every key holding one tenant's data carries `{t:<tenantId>}`, a Redis Cluster hash
 *   tag, so one tenant's keys share a slot and multi-key Lua scripts on them stay legal.
 * - Global scheduler state lives under its own tag `{sched}`.
 */
export class RedisKeys {
  constructor(readonly prefix: string) {
    if (!/^[A-Za-z0-9:_-]+$/.test(prefix)) throw new Error(`bad redis prefix ${prefix}`);
  }

  /** The hash-tagged namespace of one tenant. */
  tenant(tenantId: string): string {
    return `${this.prefix}:{t:${tenantId}}`;
  }

  /** BullMQ prefix for one tenant's queue (BullMQ appends `:<queue>:<suffix>`). */
  tenantQueuePrefix(tenantId: string): string {
    return this.tenant(tenantId);
  }

  /** Token stream of one completion. */
  completionStream(tenantId: string, completionId: string): string {
    return `${this.tenant(tenantId)}:stream:${completionId}`;
  }

  /** Admission counters and limiter state of one tenant. */
  admission(tenantId: string, what: string): string {
    return `${this.tenant(tenantId)}:adm:${what}`;
  }

  /** Global scheduler keys (which tenants have work, virtual times). */
  sched(what: string): string {
    return `${this.prefix}:{sched}:${what}`;
  }

  /** Pub/sub channel that wakes readers of a tenant's streams. */
  wakeChannel(tenantId: string): string {
    return `${this.tenant(tenantId)}:wake`;
  }

  /** Pub/sub channel that wakes readers of one completion's token stream. */
  streamWakeChannel(tenantId: string, completionId: string): string {
    return `${this.wakeChannel(tenantId)}:${completionId}`;
  }

  /** Cross-process invalidation channel for API key caches. */
  authInvalidationChannel(): string {
    return `${this.prefix}:{auth}:invalidate`;
  }

  /** Global (non-tenant) namespace for a named subsystem, e.g. the audit queue. */
  global(subsystem: string): string {
    return `${this.prefix}:{${subsystem}}`;
  }

  // ---- admission (libs/scheduler) ----

  /** Hash of one tenant's admission counters and token-bucket levels. */
  admissionState(tenantId: string): string {
    return this.admission(tenantId, "state");
  }

  /** Hash of one completion's admission reservation (idempotency record). */
  admissionRecord(tenantId: string, completionId: string): string {
    return this.admission(tenantId, `c:${completionId}`);
  }

  /** Global cost-weighted queued work: total (string, milli-tokens) and per-completion contributions (hash). */
  globalQueuedTokens(): string {
    return this.sched("adm:queued");
  }

  globalQueuedContributions(): string {
    return this.sched("adm:contrib");
  }

  // ---- fair scheduler (libs/scheduler) ----

  /** ZSET tenant → virtual time, holding only tenants believed to have waiting jobs. */
  schedReady(): string {
    return this.sched("ready");
  }

  /** Hash tenant → virtual time (kept while the tenant is idle). */
  schedVtime(): string {
    return this.sched("vtime");
  }

  /** Hash tenant → scheduling weight (latest enqueue wins). */
  schedWeight(): string {
    return this.sched("weight");
  }

  /** Hash tenant → ready epoch, bumped whenever a job may have entered its wait list. */
  schedReadySeq(): string {
    return this.sched("readyseq");
  }

  /** String: the global virtual clock (virtual time of the latest dispatch). */
  schedVirtualClock(): string {
    return this.sched("vclock");
  }

  /** ZSET tenant → last dispatch time (ms): tenants whose queues may hold active jobs. */
  schedActive(): string {
    return this.sched("active");
  }

  /** Hash tenant → registration counter of `schedActive` (compare-and-delete). */
  schedActiveSeq(): string {
    return this.sched("activeseq");
  }

  /** String: sequence feeding `schedActiveSeq`. */
  schedActiveCounter(): string {
    return this.sched("activectr");
  }

  /** ZSET worker id → ms (Redis time) its heartbeat expires at (libs/scheduler worker-heartbeats.ts). */
  schedWorkers(): string {
    return this.sched("workers");
  }

  /** Pub/sub channel: a tenant became ready (sched-ready); wakes idle dispatch loops. */
  schedReadyChannel(): string {
    return this.sched("ready-wake");
  }

  /**
   * Sorted set `tenant/completion` → ms: createCompletion's write-ahead record, added before
   * admission and removed once the job is queued; what a crash leaves the reconciler repairs.
   */
  createIntents(): string {
    return this.sched("creating");
  }

  /**
   * Hash of a completion's replays: the stream index it had at its last start and how many
   * starts in a row found no progress since the one before (poison-job detection).
   */
  replayMark(tenantId: string, completionId: string): string {
    return `${this.tenant(tenantId)}:replays:${completionId}`;
  }

  // ---- live tenant metrics (libs/telemetry live-metrics) ----

  /** Hash of one tenant's live counters and latency histograms for one time bucket (start in s). */
  liveMetricsBucket(tenantId: string, bucketStartSeconds: number): string {
    return `${this.tenant(tenantId)}:live:b:${bucketStartSeconds}`;
  }

  /** Hash process id → the tenant's current byte gauges in that process, with the time written. */
  liveMetricsGauges(tenantId: string): string {
    return `${this.tenant(tenantId)}:live:g`;
  }

  /** Flag set when a completion was cancelled (the worker polls it between decode steps). */
  cancelFlag(tenantId: string, completionId: string): string {
    return `${this.tenant(tenantId)}:cancel:${completionId}`;
  }
}
