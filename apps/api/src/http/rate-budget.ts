import type { Principal } from "@lite/auth";

/**
 * A token bucket per tenant (an operator key: per key) in this API process: `burst` units,
 * refilled at `perSecond`. Used for operations started over WebSocket (WS_SUBSCRIBES_PER_SECOND:
 * the per-connection cap bounds operations live at once, not how fast they are started and
 * finished again) and for refused HTTP requests (CLIENT_ERRORS_PER_SECOND).
 */
export class RateBudget {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** Takes one unit from the caller's bucket: 0 when allowed, else the ms until one is. */
  take(p: Principal): number {
    const wait = this.wait(p);
    if (wait === 0) this.bucketOf(p).tokens -= 1;
    return wait;
  }

  /**
   * Takes `units` whatever the bucket holds (a cost already incurred): it may go into debt,
   * down to -burst at most, which the refill repays before the next unit.
   */
  charge(p: Principal, units: number): void {
    const b = this.bucketOf(p);
    b.tokens = Math.max(-this.burst, b.tokens - units);
  }

  /** The ms until the caller's bucket holds a unit (0: it holds one now); takes nothing. */
  wait(p: Principal): number {
    const b = this.bucketOf(p);
    return b.tokens >= 1 ? 0 : Math.ceil(((1 - b.tokens) * 1000) / this.perSecond);
  }

  private bucketOf(p: Principal): { tokens: number; atMs: number } {
    const key = p.tenantId ?? p.apiKeyId;
    const now = this.nowMs();
    const b = this.buckets.get(key) ?? { tokens: this.burst, atMs: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.atMs) * this.perSecond) / 1000);
    b.atMs = now;
    if (this.buckets.size >= 10_000) this.forgetFull(now);
    this.buckets.set(key, b);
    return b;
  }

  /** Buckets that have refilled completely hold nothing worth keeping. */
  private forgetFull(now: number): void {
    for (const [key, b] of this.buckets)
      if (b.tokens + ((now - b.atMs) * this.perSecond) / 1000 >= this.burst) this.buckets.delete(key);
  }
}
