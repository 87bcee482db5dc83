import { systemClock, type Clock } from "@lite/core";
import type { ExpertRef, PrefetchRequest } from "@lite/model";
import type { CacheQuotaSource } from "./cache-quota";
import type { ExpertResidency } from "./expert-residency";
import type { PrefetchOutcome, ResidencyView } from "./expert-residency.types";
import { PrefetchBuckets } from "./prefetch-bucket";
import { PrefetchUsageBook } from "./prefetch-usage";

/**
 * The worker's prefetch queue: the decode step hands it each sequence's predicted
 * next-layer experts (libs/model prefetch-hook.ts) and it fetches them off the step.
 *   1. `request` (on the step, synchronous, cheap): each predicted expert, in the request's
 *      priority order, is queued unless its tier is outside the sequence's TierSet (never
 *      fetched: the TierSet is the tenant's granted, admitted tiers, checked again at the
 *      job's start), the tenant already uses it HOT, or the same (expert, tenant) is queued
 *      or running. Beyond `maxQueued` the oldest queued prefetches are dropped (stale guesses);
 *   2. at most `concurrency` prefetches run at once, each after a `setImmediate` (never
 *      inside a decode step); one whose sequence has finished or left its batch is dropped;
 *   3. a prefetch reads the tenant's `prefetchBytesPerSecond` from the quota port and asks
 *      the residency (ExpertResidency.prefetch: room without evicting anything charged,
 *      HOT else WARM); the residency asks `admit(bytes)` once it has room, which takes the
 *      bytes from the tenant's bucket (prefetch-bucket.ts) — refused: throttled, dropped —
 *      and adds them to the sequence's PREFETCH_BYTES (prefetch-usage.ts);
 *   4. errors (a file failing its hash, the cache closing) drop the prefetch: a demand load
 *      of the same expert reports them to the sequence that needs it.
 */

export interface ExpertPrefetcherOptions {
  /** false: every request is ignored and no prediction is computed (PREFETCH=off); default true */
  enabled?: boolean;
  /** the buckets' clock (ms); default Date.now */
  clock?: Clock;
  /** prefetches running at once in the worker; default 1 (they share its cores with the decode steps) */
  concurrency?: number;
  /** queued prefetches at most, worker-wide; default 256 */
  maxQueued?: number;
}

interface QueuedPrefetch {
  key: string;
  view: ResidencyView;
  ref: ExpertRef;
  tenantId: string;
  sequenceId: string;
  live(): boolean;
}

export class ExpertPrefetcher {
  readonly enabled: boolean;
  /** PREFETCH_BYTES per completion until its usage is recorded */
  readonly usage = new PrefetchUsageBook();
  private readonly buckets: PrefetchBuckets;
  private readonly concurrency: number;
  private readonly maxQueued: number;
  private readonly queue: QueuedPrefetch[] = [];
  private readonly pending = new Set<string>();
  private running = 0;
  private idleWaiters: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly residency: ExpertResidency,
    private readonly quotas: CacheQuotaSource,
    opts: ExpertPrefetcherOptions = {},
  ) {
    this.enabled = opts.enabled ?? true;
    this.buckets = new PrefetchBuckets(opts.clock ?? systemClock);
    this.concurrency = opts.concurrency ?? 1;
    this.maxQueued = opts.maxQueued ?? 256;
    for (const [name, v] of [
      ["concurrency", this.concurrency],
      ["maxQueued", this.maxQueued],
    ] as const)
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }

  /** Step 1: queues the request's experts (never waits, never throws). */
  request(view: ResidencyView, req: PrefetchRequest): void {
    if (!this.enabled || this.closed) return;
    for (const ref of req.experts) {
      if (!req.tierIds.has(ref.tierId)) continue;
      if (this.residency.usedHotBy(view, ref, req.tenantId)) continue;
      const key = `${view.id}|${ref.key}|${req.tenantId}`;
      if (this.pending.has(key)) continue;
      this.pending.add(key);
      this.queue.push({ key, view, ref, tenantId: req.tenantId, sequenceId: req.sequenceId, live: req.live });
      if (this.queue.length > this.maxQueued) this.pending.delete(this.queue.shift()!.key);
    }
    this.pump();
  }

  /** Resolves once nothing is queued or running (tests, shutdown). */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Queued prefetches now. */
  get queued(): number {
    return this.queue.length;
  }

  /** Drops what is queued and waits for what runs. */
  async close(): Promise<void> {
    this.closed = true;
    for (const q of this.queue.splice(0)) this.pending.delete(q.key);
    await this.idle();
  }

  private pump(): void {
    while (this.running < this.concurrency && this.queue.length > 0) {
      const item = this.queue.shift()!;
      if (this.closed || !item.live()) {
        this.pending.delete(item.key);
        continue;
      }
      this.running++;
      void this.run(item).finally(() => {
        this.running--;
        this.pending.delete(item.key);
        this.pump();
      });
    }
    if (this.running === 0 && this.queue.length === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Steps 2–4 for one expert. */
  private async run(item: QueuedPrefetch): Promise<PrefetchOutcome | undefined> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      if (this.closed || !item.live()) return undefined;
      const rate = (await this.quotas.quotaOf(item.tenantId)).prefetchBytesPerSecond;
      return await this.residency.prefetch(item.view, item.ref, item.tenantId, (bytes) => {
        if (!this.buckets.take(item.tenantId, bytes, rate)) return false;
        this.usage.add(item.tenantId, item.sequenceId, item.ref.tierId, bytes);
        return true;
      });
    } catch {
      return undefined;
    }
  }
}
