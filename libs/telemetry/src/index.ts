/**
 * @lite/telemetry — usage events (idempotent, per completion) and the queries over them,
 * per-tenant metrics, and the one logger factory (same redaction in the API and the worker).
 */
export * from "./usage-event.schema";
export * from "./usage-writer";
export * from "./usage-queries";
export * from "./tenant-metrics";
export * from "./logger";
