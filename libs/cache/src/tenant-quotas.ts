import type { ExpertRef } from "@lite/model";
import { CacheError } from "./cache.errors";
import { RESIDENCIES, type Residency } from "./cache-entry";
import type { CacheQuotaSource, TenantCacheQuota } from "./cache-quota";

/**
 * The quotas the cache last learnt from its port, per tenant. `acquire` never waits, so it
 * uses what is known (asking the port as it goes); `load` awaits the port's answer. A lowered
 * quota is reported to `onLowered` (the residency then evicts the tenant's idle entries).
 */
export class TenantQuotas {
  private readonly known = new Map<string, TenantCacheQuota>();

  constructor(
    private readonly source: CacheQuotaSource,
    private readonly onLowered: (tenantId: string) => void,
  ) {}

  /** Asks the port for each tenant (answers arriving later are kept); true when all are known. */
  allKnown(tenants: ReadonlySet<string>): boolean {
    for (const t of tenants) {
      const answer = this.source.quotaOf(t);
      if (answer instanceof Promise)
        answer.then(
          (q) => this.learn(t, q),
          () => undefined,
        );
      else this.learn(t, answer);
    }
    return [...tenants].every((t) => this.known.has(t));
  }

  async learnAll(tenants: ReadonlySet<string>): Promise<void> {
    for (const t of tenants) this.learn(t, await this.source.quotaOf(t));
  }

  bytes(tenantId: string, level: Residency): number | undefined {
    const q = this.known.get(tenantId);
    return level === "HOT" ? q?.hotMemoryBytes : q?.warmMemoryBytes;
  }

  weightOf = (tenantId: string): number => this.known.get(tenantId)?.weight ?? 1;

  tenants(): string[] {
    return [...this.known.keys()].sort();
  }

  /** Refuses at once a load no quota of its tenants' could ever hold (their part of the expert). */
  assertCanHold(ref: ExpertRef, loaders: ReadonlySet<string>): void {
    const part = Math.ceil(ref.file.bytes / Math.max(1, loaders.size));
    for (const level of RESIDENCIES)
      for (const t of loaders) {
        const quota = this.bytes(t, level);
        const field = level === "HOT" ? "hotMemoryBytes" : "warmMemoryBytes";
        if (quota !== undefined && quota < part)
          throw new CacheError(
            "QUOTA_TOO_SMALL",
            `quota ${field} of tenant ${t} (${quota}) cannot hold its part (${part} bytes) of expert ${ref.key}`,
            { tenantId: t, limit: field, quota, part },
          );
      }
  }

  private learn(tenantId: string, q: TenantCacheQuota): void {
    const before = this.known.get(tenantId);
    this.known.set(tenantId, q);
    if (before && (below(q.hotMemoryBytes, before.hotMemoryBytes) || below(q.warmMemoryBytes, before.warmMemoryBytes)))
      this.onLowered(tenantId);
  }
}

function below(now: number | undefined, before: number | undefined): boolean {
  return now !== undefined && (before === undefined || now < before);
}
