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

function decrement(counts: Map<string, number>, key: string): void {
  const n = (counts.get(key) ?? 0) - 1;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}
