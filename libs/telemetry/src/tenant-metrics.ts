import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * Per-tenant Prometheus series (label `tenant`). Kept small on purpose: the telemetry
 * issue adds the rest. Each process builds its own registry and passes it around; nothing
 * here is a global.
 */

export interface ApiCompletionMetrics {
  /** completions admitted, by tenant */
  admitted: Counter<"tenant" | "degraded">;
  /** createCompletion refused by admission, by tenant and code (RATE_LIMITED, QUOTA_EXCEEDED, UNAVAILABLE) */
  throttled: Counter<"tenant" | "code">;
}

export interface WorkerMetrics {
  /** output tokens emitted (replayed tokens a resumed job skips are not counted) */
  tokensGenerated: Counter<"tenant">;
  /** time from the completion's creation to its first emitted token, seconds */
  ttftSeconds: Histogram<"tenant">;
  /** completions finished, by tenant and finish reason */
  completionsFinished: Counter<"tenant" | "reason">;
  /** decode steps and their wall time, seconds (no tenant: a step mixes tenants) */
  decodeStepSeconds: Histogram<string>;
  /**
   * a tenant's first uses of an expert since it became resident, each held back by the timing
   * defence (libs/model timing-defence.ts): counted from the tenant's own uses, the same
   * whether another tenant made the expert hot or it was cold
   */
  paddedFirstUses: Counter<"tenant">;
}

const TTFT_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Registers metrics once per registry (the API may build its schema more than once in tests). */
function once<T>(registry: Registry, name: string, make: () => T): T {
  const existing = registry.getSingleMetric(name);
  return (existing as unknown as T) ?? make();
}

export function createApiCompletionMetrics(registry: Registry): ApiCompletionMetrics {
  return {
    admitted: once(
      registry,
      "lite_requests_admitted_total",
      () =>
        new Counter({
          name: "lite_requests_admitted_total",
          help: "completions admitted",
          labelNames: ["tenant", "degraded"] as const,
          registers: [registry],
        }),
    ),
    throttled: once(
      registry,
      "lite_requests_throttled_total",
      () =>
        new Counter({
          name: "lite_requests_throttled_total",
          help: "completions refused by admission",
          labelNames: ["tenant", "code"] as const,
          registers: [registry],
        }),
    ),
  };
}

export function createWorkerMetrics(registry: Registry): WorkerMetrics {
  return {
    tokensGenerated: once(
      registry,
      "lite_tokens_generated_total",
      () =>
        new Counter({
          name: "lite_tokens_generated_total",
          help: "output tokens emitted",
          labelNames: ["tenant"] as const,
          registers: [registry],
        }),
    ),
    ttftSeconds: once(
      registry,
      "lite_ttft_seconds",
      () =>
        new Histogram({
          name: "lite_ttft_seconds",
          help: "completion creation to first token",
          labelNames: ["tenant"] as const,
          buckets: TTFT_BUCKETS_S,
          registers: [registry],
        }),
    ),
    completionsFinished: once(
      registry,
      "lite_completions_finished_total",
      () =>
        new Counter({
          name: "lite_completions_finished_total",
          help: "completions finished",
          labelNames: ["tenant", "reason"] as const,
          registers: [registry],
        }),
    ),
    decodeStepSeconds: once(
      registry,
      "lite_decode_step_seconds",
      () =>
        new Histogram({
          name: "lite_decode_step_seconds",
          help: "decode step wall time",
          buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
          registers: [registry],
        }),
    ),
    paddedFirstUses: once(
      registry,
      "lite_padded_first_uses_total",
      () =>
        new Counter({
          name: "lite_padded_first_uses_total",
          help: "first uses of a resident expert held back by the timing defence",
          labelNames: ["tenant"] as const,
          registers: [registry],
        }),
    ),
  };
}

export function createRegistry(opts: { defaultMetrics?: boolean; labels?: Record<string, string> } = {}): Registry {
  const registry = new Registry();
  if (opts.labels) registry.setDefaultLabels(opts.labels);
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

/** Parses one counter's per-tenant values out of Prometheus text (tests, benches, demo). */
export function parseTenantCounter(text: string, metric: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = new RegExp(`^${metric}\\{([^}]*)\\}\\s+([0-9.eE+-]+)$`, "gm");
  for (const m of text.matchAll(re)) {
    const tenant = /tenant="([^"]*)"/.exec(m[1])?.[1];
    if (tenant !== undefined) out.set(tenant, (out.get(tenant) ?? 0) + Number(m[2]));
  }
  return out;
}
