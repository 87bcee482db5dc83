import type { Clock } from "@lite/core";

/**
 * Per-tenant token buckets of prefetch bytes, one worker (quotas apply per worker process):
 *   1. a tenant's bucket holds at most `prefetchBytesPerSecond` bytes (one second of burst)
 *      and refills at that rate on the injected clock; it starts full;
 *   2. `take(tenant, bytes, rate)` refills, then takes the bytes when the bucket holds them
 *      (true) or takes nothing (false: the prefetch is throttled, never queued for later);
 *   3. so over any interval of T seconds a tenant's prefetches read at most rate × (T + 1)
 *      bytes; an expert larger than one second of its rate is never prefetched; rate 0 = no
 *      prefetch, undefined = unbounded.
 * A changed rate applies from the next take (the bucket is clipped to the new size).
 */
export class PrefetchBuckets {
  private readonly buckets = new Map<string, { bytes: number; atMs: number }>();

  constructor(private readonly clock: Clock) {}

  take(tenantId: string, bytes: number, bytesPerSecond: number | undefined): boolean {
    if (bytesPerSecond === undefined) return true;
    const now = this.clock.nowMs();
    const b = this.buckets.get(tenantId) ?? { bytes: bytesPerSecond, atMs: now };
    b.bytes = Math.min(bytesPerSecond, b.bytes + (Math.max(0, now - b.atMs) * bytesPerSecond) / 1000);
    b.atMs = now;
    this.buckets.set(tenantId, b);
    if (b.bytes < bytes) return false;
    b.bytes -= bytes;
    return true;
  }
}
