import { Counter, Gauge, type Registry } from "prom-client";
import type { TenantLabels } from "./tenant-labels";

/**
 * The worker's per-tenant KV-cache series (libs/model kv-ledger.ts, docs/KV-QUOTAS.md):
 *   lite_kv_bytes{tenant}         KV bytes of the tenant's live sequences in this worker now
 *   lite_kv_pauses_total{tenant}  its sequences paused (KV dropped) because its own
 *                                 kvCacheBytes had no room for an older one of its own
 * Both move only with the tenant's own sequences: a pause is charged to the tenant whose
 * sequence paused, and only that tenant's sequences are ever paused for its quota.
 */
export interface KvMetrics {
  /** counts one pause of the tenant's sequence (KvLedgerOptions.onPause) */
  paused(tenantId: string): void;
}

export interface KvMetricsOptions {
  /** KV bytes per tenant now (KvLedger.bytesByTenant), read at each scrape */
  readBytes: () => ReadonlyMap<string, number>;
  /** bounds the `tenant` label as the other worker series do (default: every tenant keeps its id) */
  tenantLabels?: Pick<TenantLabels, "label" | "peek">;
}

export function createKvMetrics(registry: Registry, opts: KvMetricsOptions): KvMetrics {
  const label = (t: string) => opts.tenantLabels?.label(t) ?? t;
  const gaugeLabel = (t: string) => opts.tenantLabels?.peek(t) ?? t;
  if (!registry.getSingleMetric("lite_kv_bytes"))
    new Gauge({
      name: "lite_kv_bytes",
      help: "KV-cache bytes of the tenant's live sequences in this worker",
      labelNames: ["tenant"] as const,
      registers: [registry],
      collect() {
        this.reset();
        // Tenants without a label of their own add up under theirs (`other`).
        for (const [tenantId, bytes] of opts.readBytes()) this.inc({ tenant: gaugeLabel(tenantId) }, bytes);
      },
    });
  const pauses =
    (registry.getSingleMetric("lite_kv_pauses_total") as Counter<"tenant"> | undefined) ??
    new Counter({
      name: "lite_kv_pauses_total",
      help: "sequences of the tenant paused (KV dropped, recomputed on resume) to keep it within its kvCacheBytes",
      labelNames: ["tenant"] as const,
      registers: [registry],
    });
  return { paused: (tenantId) => pauses.inc({ tenant: label(tenantId) }) };
}
