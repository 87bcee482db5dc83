import type { Principal } from "@lite/auth";

/**
 * A token bucket per tenant (an operator key: per key) in this API process: `burst` units,
 * refilled at `perSecond`. Used for operations started over WebSocket (WS_SUBSCRIBES_PER_SECOND:
 * the per-connection cap bounds operations live at once, not how fast they are started and
 * finished again) and for refused HTTP requests (CLIENT_ERRORS_PER_SECOND).
 *
 * With `calmMs` > 0, the burst is for callers within the rate: once `take` refuses a caller,
 * its bucket holds at most one unit until it has gone `calmMs` without a refusal. A caller
 * that keeps coming back past the rate is paced at `perSecond`, one unit at a time, instead
 * of spending a whole burst at once each time it has paused long enough to refill.
 */
export class RateBudget {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly nowMs: () => number = Date.now,
    private readonly calmMs = 0,
  ) {}

  /** Takes one unit from the caller's bucket: 0 when allowed, else the ms until one is. */
  take(p: Principal): number {
    const b = this.bucketOf(p);
    const wait = waitOf(b, this.perSecond);
    if (wait === 0) b.tokens -= 1;
    else if (this.calmMs > 0) b.refusedAtMs = b.atMs;
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
    return waitOf(this.bucketOf(p), this.perSecond);
  }

  private bucketOf(p: Principal): Bucket {
    const key = p.tenantId ?? p.apiKeyId;
    const now = this.nowMs();
    const b = this.buckets.get(key) ?? { tokens: this.burst, atMs: now, refusedAtMs: null };
    b.tokens = Math.min(this.capOf(b, now), b.tokens + ((now - b.atMs) * this.perSecond) / 1000);
    b.atMs = now;
    if (this.buckets.size >= 10_000) this.forgetFull(now);
    this.buckets.set(key, b);
    return b;
  }

  /** What a bucket may hold now: one unit while it is being paced, else the burst. */
  private capOf(b: Bucket, now: number): number {
    return b.refusedAtMs !== null && now - b.refusedAtMs < this.calmMs ? Math.min(1, this.burst) : this.burst;
  }

  /** Buckets that have refilled completely (and are not being paced) hold nothing worth keeping. */
  private forgetFull(now: number): void {
    for (const [key, b] of this.buckets)
      if (this.capOf(b, now) === this.burst && b.tokens + ((now - b.atMs) * this.perSecond) / 1000 >= this.burst)
        this.buckets.delete(key);
  }
}

interface Bucket {
  tokens: number;
  atMs: number;
  /** when `take` last refused this caller (with `calmMs`), else null */
  refusedAtMs: number | null;
}

function waitOf(b: Bucket, perSecond: number): number {
  return b.tokens >= 1 ? 0 : Math.ceil(((1 - b.tokens) * 1000) / perSecond);
}
