import { Counter, Gauge, type Registry } from "prom-client";

/**
 * The audit pipeline's Prometheus series, registered in the registry the process serves
 * at /metrics (passed in; nothing here is global). What to alert on:
 * - `lite_audit_queue_lag_seconds` above a few seconds: the writer is behind or stopped
 *   (PostgreSQL down, or a bug) while events pile up in Redis;
 * - `lite_audit_dead_letter_length` above 0 (or `lite_audit_quarantined_total` rising): an
 *   event could not be stored even after sanitising and waits in the dead-letter stream.
 */
export interface AuditMetrics {
  /** events moved to the dead-letter stream, by reason (`malformed` or `rejected`) */
  quarantined: Counter<"reason">;
  /** events stored with a field escaped or truncated, by field */
  sanitised: Counter<"field">;
  /** transactions that appended a batch of queued events (the writer's load on PostgreSQL) */
  batches: Counter;
}

/** What the gauges read when scraped (Redis round trips, so only on scrape). */
export interface AuditQueueStats {
  /** entries waiting in the queue */
  length: number;
  /** age of the oldest waiting entry, seconds (0 when empty) */
  lagSeconds: number;
  /** entries in the dead-letter stream */
  deadLetters: number;
}

const GAUGES = {
  length: ["lite_audit_queue_length", "audit events queued in Redis, not yet in PostgreSQL"],
  lagSeconds: ["lite_audit_queue_lag_seconds", "age of the oldest queued audit event, seconds (0 when empty)"],
  deadLetters: ["lite_audit_dead_letter_length", "audit events quarantined in the dead-letter stream"],
} as const;

function counter<L extends string>(registry: Registry, name: string, help: string, label: L): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames: [label], registers: [registry] });
}

/**
 * Registers (once per registry) the counters, and the gauges read from `stats` at scrape
 * time. A later writer on the same registry (tests build several) takes the gauges over.
 * A failed read leaves the gauges at their last values rather than failing the scrape.
 */
export function createAuditMetrics(
  registry: Registry,
  stats: () => Promise<AuditQueueStats>,
  onStatsError?: (error: unknown) => void,
): AuditMetrics {
  let pending: Promise<AuditQueueStats | null> | null = null;
  // One Redis read serves all three gauges of one scrape.
  const read = (): Promise<AuditQueueStats | null> => {
    pending ??= stats()
      .catch((e: unknown) => {
        onStatsError?.(e);
        return null;
      })
      .finally(() => setTimeout(() => (pending = null), 0));
    return pending;
  };
  for (const [field, [name, help]] of Object.entries(GAUGES) as Array<[keyof AuditQueueStats, readonly string[]]>) {
    registry.removeSingleMetric(name);
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const s = await read();
        if (s) this.set(s[field]);
      },
    });
  }
  return {
    quarantined: counter(
      registry,
      "lite_audit_quarantined_total",
      "audit events moved to the dead-letter stream, by reason",
      "reason",
    ),
    sanitised: counter(
      registry,
      "lite_audit_sanitised_total",
      "audit events stored with a field escaped (NUL, lone surrogate) or truncated, by field",
      "field",
    ),
    batches:
      (registry.getSingleMetric("lite_audit_append_batches_total") as Counter | undefined) ??
      new Counter({
        name: "lite_audit_append_batches_total",
        help: "transactions that appended a batch of queued audit events to PostgreSQL",
        registers: [registry],
      }),
  };
}
