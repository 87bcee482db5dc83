import type { Registry } from "prom-client";
import { systemClock, type Clock } from "@lite/core";
import type { PrismaClient } from "@lite/db";
import { KvLedger, type KvQuotaSource } from "@lite/model";
import { createKvMetrics, type TenantLabels } from "@lite/telemetry";
import { DEFAULT_QUOTA } from "@lite/tenancy";

/**
 * The worker's KV quotas (docs/KV-QUOTAS.md): one KvLedger for every model it loads (a
 * tenant's kvCacheBytes bounds its KV in the whole worker), its quota port over PostgreSQL,
 * and its series lite_kv_bytes / lite_kv_pauses_total.
 */
export function createWorkerKvLedger(
  db: Pick<PrismaClient, "tenant">,
  /** undefined (METRICS=off): no series */
  registry: Registry | undefined,
  opts: { ttlMs: number; tenantLabels?: TenantLabels; clock?: Clock },
): KvLedger {
  // The metrics read the ledger at each scrape and count its pauses (both after this returns).
  const ledger: KvLedger = new KvLedger({
    quotas: prismaKvQuotas(db, opts),
    onPause: (tenantId) => metrics?.paused(tenantId),
  });
  const metrics =
    registry &&
    createKvMetrics(registry, {
      readBytes: () => ledger.bytesByTenant(),
      tenantLabels: opts.tenantLabels,
    });
  return ledger;
}

/**
 * Each tenant's kvCacheBytes from PostgreSQL, kept `ttlMs` (EXPERT_CACHE_QUOTA_TTL_SECONDS,
 * as the expert cache's quotas): a change through setQuota reaches every worker within it.
 * A stale value is served while it is read again (a failed read keeps it); a tenant never read
 * answers with the read's promise, and its sequences wait for it. No Quota row: DEFAULT_QUOTA.
 */
export function prismaKvQuotas(
  db: Pick<PrismaClient, "tenant">,
  opts: { ttlMs: number; clock?: Clock },
): KvQuotaSource {
  const clock = opts.clock ?? systemClock;
  const kept = new Map<string, { bytes: number; atMs: number }>();
  const reading = new Map<string, Promise<number>>();
  const read = (tenantId: string): Promise<number> => {
    let p = reading.get(tenantId);
    if (!p) {
      p = db.tenant
        .findUnique({ where: { id: tenantId }, select: { quota: { select: { kvCacheBytes: true } } } })
        .then((row) => {
          const v = row?.quota?.kvCacheBytes ?? DEFAULT_QUOTA.kvCacheBytes;
          const bytes = v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
          kept.set(tenantId, { bytes, atMs: clock.nowMs() });
          return bytes;
        })
        .finally(() => reading.delete(tenantId));
      reading.set(tenantId, p);
    }
    return p;
  };
  return {
    kvCacheBytes(tenantId) {
      const k = kept.get(tenantId);
      if (!k) return read(tenantId);
      if (clock.nowMs() - k.atMs >= opts.ttlMs) read(tenantId).catch(() => undefined);
      return k.bytes;
    },
  };
}
