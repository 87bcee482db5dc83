/**
 * @lite/telemetry — usage events (idempotent, per completion) and the queries over them,
 * per-tenant metrics (Prometheus with a bounded tenant label, and live metrics in Redis), and the one logger factory (same redaction in the API and the worker).
 */
export * from "./usage-event.schema";
export * from "./usage-writer";
export * from "./usage-queries";
export * from "./tenant-metrics";
export * from "./tenant-labels";
export * from "./latency-histogram";
export * from "./live-metrics.fields";
export * from "./live-metrics.recorder";
export * from "./live-metrics.reader";
export * from "./inter-token-clock";
export * from "./logger";
export * from "./kv-metrics";
