/**
 * @lite/telemetry — usage events (idempotent, per completion) and per-tenant metrics.
 */
export * from "./usage-event.schema";
export * from "./usage-writer";
export * from "./tenant-metrics";
