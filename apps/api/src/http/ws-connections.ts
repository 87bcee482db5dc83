import type { Principal } from "@lite/auth";

/**
 * Open WebSockets per API key and per tenant in this API process (WS_MAX_CONNECTIONS_PER_KEY,
 * WS_MAX_CONNECTIONS_PER_TENANT). Counted after authentication, released on close; an
 * operator key (no tenant) is bounded per key only.
 */
export class ConnectionCounts {
  private readonly byKey = new Map<string, number>();
  private readonly byTenant = new Map<string, number>();

  constructor(
    private readonly maxPerKey: number,
    private readonly maxPerTenant: number,
  ) {}

  /** Counts the connection in and returns true, or returns false (nothing counted) when a limit is reached. */
  admit(p: Principal): boolean {
    if ((this.byKey.get(p.apiKeyId) ?? 0) >= this.maxPerKey) return false;
    if (p.tenantId && (this.byTenant.get(p.tenantId) ?? 0) >= this.maxPerTenant) return false;
    this.byKey.set(p.apiKeyId, (this.byKey.get(p.apiKeyId) ?? 0) + 1);
    if (p.tenantId) this.byTenant.set(p.tenantId, (this.byTenant.get(p.tenantId) ?? 0) + 1);
    return true;
  }

  release(p: Principal): void {
    decrement(this.byKey, p.apiKeyId);
    if (p.tenantId) decrement(this.byTenant, p.tenantId);
  }
}

/**
 * Operations started per tenant (an operator key: per key) over all its WebSockets in this
 * API process: a token bucket of `burst` operations refilled at `perSecond`. The per-connection
 * cap bounds operations live at once, not how fast they are started and finished again; a
 * client that replays 1,000 subscriptions to a finished completion would otherwise make the
 * API look its row up and replay its stream 1,000 times as fast as it can send.
 */
export class SubscribeBudget {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** Takes one operation from the caller's bucket: 0 when allowed, else the ms until one is. */
  take(p: Principal): number {
    const key = p.tenantId ?? p.apiKeyId;
    const now = this.nowMs();
    const b = this.buckets.get(key) ?? { tokens: this.burst, atMs: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.atMs) * this.perSecond) / 1000);
    b.atMs = now;
    this.buckets.set(key, b);
    if (this.buckets.size > 10_000) this.forgetFull(now);
    if (b.tokens < 1) return Math.ceil(((1 - b.tokens) * 1000) / this.perSecond);
    b.tokens -= 1;
    return 0;
  }

  /** Buckets that have refilled completely hold nothing worth keeping. */
  private forgetFull(now: number): void {
    for (const [key, b] of this.buckets)
      if (b.tokens + ((now - b.atMs) * this.perSecond) / 1000 >= this.burst) this.buckets.delete(key);
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  const n = (counts.get(key) ?? 0) - 1;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}
