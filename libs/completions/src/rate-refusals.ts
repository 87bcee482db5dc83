/**
 * Tenants this API process saw refused for requestsPerMinute, and until when their bucket
 * holds no request: a tenant's request in that window is refused at once, before its TierSet
 * is resolved, audited ALLOW, reserved and rolled back (four Redis round trips and the work
 * around them). A tenant flooding the API past its rate then costs the other tenants' requests
 * little: under the isolation bench's flood (three times the heavy tenant's rate) two of its
 * three requests were refused this way.
 *
 * Exact, never stricter than admission: the window is the refusal's retryAfterMs (admit-2.lua:
 * when the bucket, refilled continuously, holds a request again) counted from when this
 * process SENT the refused admit, at or before the script read Redis's clock; admission
 * charges a refused request nothing, so nothing here changes the bucket. A writer of the
 * tenant's quota invalidates the tenant (CompletionCaches), which forgets its window.
 */
export class RateRefusals {
  private readonly until = new Map<string, number>();

  constructor(private readonly maxTenants = 10_000) {}

  /** The tenant's admit sent at `sentAtMs` was refused for requestsPerMinute, retry after `retryAfterMs`. */
  note(tenantId: string, sentAtMs: number, retryAfterMs: number): void {
    if (this.until.size >= this.maxTenants && !this.until.has(tenantId)) this.until.clear();
    this.until.set(tenantId, sentAtMs + retryAfterMs);
  }

  /** ms until the tenant's bucket holds a request again, or 0 when it may (or nothing is known). */
  waitMs(tenantId: string, nowMs: number): number {
    const until = this.until.get(tenantId);
    if (until === undefined) return 0;
    if (nowMs < until) return until - nowMs;
    this.until.delete(tenantId);
    return 0;
  }

  /** Forgets a tenant's window (its quota changed), or every tenant's. */
  forget(tenantId?: string): void {
    if (tenantId === undefined) this.until.clear();
    else this.until.delete(tenantId);
  }
}
