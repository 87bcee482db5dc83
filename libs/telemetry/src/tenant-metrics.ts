import { Counter, Histogram, Registry, collectDefaultMetrics, type LabelValues } from "prom-client";
import type { LiveMetricsRecorder } from "./live-metrics.recorder";
import type { TenantLabels } from "./tenant-labels";

/**
 * Per-tenant Prometheus series (label `tenant`, bounded by a TenantLabels: the top N tenants
 * by traffic keep their id, the rest count under `other`), each event also fed to the
 * process's LiveMetricsRecorder when given (Tenant.metrics). Each process builds its own
 * registry and passes it around; nothing here is a global.
 */

type Inc<L extends string> = Pick<Counter<L>, "inc">;
type Observe<L extends string> = Pick<Histogram<L>, "observe">;

export interface ApiCompletionMetrics {
  /** completions admitted, by tenant */
  admitted: Inc<"tenant" | "degraded">;
  /** createCompletion refused by admission, by tenant and code (RATE_LIMITED, QUOTA_EXCEEDED, UNAVAILABLE) */
  throttled: Inc<"tenant" | "code">;
}

export interface WorkerMetrics {
  /** output tokens emitted (replayed tokens a resumed job skips are not counted) */
  tokensGenerated: Inc<"tenant">;
  /** time from the completion's creation to its first emitted token, seconds */
  ttftSeconds: Observe<"tenant">;
  /** time between two appends of a completion's tokens to its stream, seconds (inter-token-clock.ts) */
  interTokenSeconds: Observe<"tenant">;
  /** completions finished, by tenant and finish reason */
  completionsFinished: Inc<"tenant" | "reason">;
  /** decode steps and their wall time, seconds (no tenant: a step mixes tenants) */
  decodeStepSeconds: Histogram<string>;
  /**
   * a tenant's first uses of an expert since it became resident, each held back by the timing
   * defence (libs/model timing-defence.ts): counted from the tenant's own uses, the same
   * whether another tenant made the expert hot or it was cold
   */
  paddedFirstUses: Inc<"tenant">;
}

/** Where per-tenant events go besides the registry. */
export interface TenantMetricSinks {
  /** bounds the `tenant` label (default: every tenant keeps its id — tests only) */
  tenantLabels?: TenantLabels;
  live?: LiveMetricsRecorder;
}

type Labels<L extends string> = Partial<Record<L, string | number>> & { tenant?: string | number };

/** A counter whose `tenant` label is bounded, calling `also(tenant, n)` on each increment. */
function boundedCounter<L extends string>(
  counter: Counter<L>,
  sinks: TenantMetricSinks,
  also?: (tenantId: string, n: number) => void,
): Inc<L> {
  return {
    inc(labels?: Labels<L> | number, value?: number) {
      if (typeof labels !== "object") return counter.inc(labels);
      const n = value ?? 1;
      const tenant = String(labels.tenant);
      also?.(tenant, n);
      const label = sinks.tenantLabels?.label(tenant, n) ?? tenant;
      counter.inc({ ...labels, tenant: label } as unknown as LabelValues<L>, n);
    },
  } as Inc<L>;
}

function boundedHistogram<L extends string>(
  histogram: Histogram<L>,
  sinks: TenantMetricSinks,
  also?: (tenantId: string, value: number) => void,
): Observe<L> {
  return {
    observe(labels: Labels<L> | number, value?: number) {
      if (typeof labels !== "object") return histogram.observe(labels);
      const tenant = String(labels.tenant);
      also?.(tenant, value as number);
      const label = sinks.tenantLabels?.label(tenant) ?? tenant;
      histogram.observe({ ...labels, tenant: label } as unknown as LabelValues<L>, value as number);
    },
  } as Observe<L>;
}

const TTFT_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Registers metrics once per registry (the API may build its schema more than once in tests). */
function once<T>(registry: Registry, name: string, make: () => T): T {
  const existing = registry.getSingleMetric(name);
  return (existing as unknown as T) ?? make();
}

export function createApiCompletionMetrics(registry: Registry, sinks: TenantMetricSinks = {}): ApiCompletionMetrics {
  const admitted = once(
    registry,
    "lite_requests_admitted_total",
    () =>
      new Counter({
        name: "lite_requests_admitted_total",
        help: "completions admitted",
        labelNames: ["tenant", "degraded"] as const,
        registers: [registry],
      }),
  );
  const throttled = once(
    registry,
    "lite_requests_throttled_total",
    () =>
      new Counter({
        name: "lite_requests_throttled_total",
        help: "completions refused by admission",
        labelNames: ["tenant", "code"] as const,
        registers: [registry],
      }),
  );
  return {
    admitted: boundedCounter(admitted, sinks, (t) => sinks.live?.request(t)),
    throttled: boundedCounter(throttled, sinks, (t) => sinks.live?.throttled(t)),
  };
}

/** METRICS=off: admission counted nowhere (neither Prometheus nor the live metrics). */
export const API_COMPLETION_METRICS_OFF: ApiCompletionMetrics = {
  admitted: { inc: () => undefined },
  throttled: { inc: () => undefined },
};

export function createWorkerMetrics(registry: Registry, sinks: TenantMetricSinks = {}): WorkerMetrics {
  const metrics = {
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
    interTokenSeconds: once(
      registry,
      "lite_inter_token_seconds",
      () =>
        new Histogram({
          name: "lite_inter_token_seconds",
          help: "time between two appends of one completion's tokens to its stream",
          labelNames: ["tenant"] as const,
          buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
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
  return {
    tokensGenerated: boundedCounter(metrics.tokensGenerated, sinks, (t, n) => sinks.live?.outputTokens(t, n)),
    ttftSeconds: boundedHistogram(metrics.ttftSeconds, sinks, (t, s) => sinks.live?.ttftMs(t, s * 1000)),
    interTokenSeconds: boundedHistogram(metrics.interTokenSeconds, sinks, (t, s) =>
      sinks.live?.interTokenMs(t, s * 1000),
    ),
    completionsFinished: boundedCounter(metrics.completionsFinished, sinks),
    decodeStepSeconds: metrics.decodeStepSeconds,
    paddedFirstUses: boundedCounter(metrics.paddedFirstUses, sinks),
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
