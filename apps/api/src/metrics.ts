import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * The API process's Prometheus registry, served at /metrics. Other modules (completions,
 * admission) register their series here once per process, e.g.
 * `createApiCompletionMetrics(apiRegistry)` from libs/telemetry. Per-tenant series carry
 * a `tenant` label.
 */
export const apiRegistry = new Registry();
collectDefaultMetrics({ register: apiRegistry, prefix: "lite_api_" });

export interface ApiMetrics {
  registry: Registry;
  /** the served-traffic series (one update per request): none with METRICS=off */
  httpRequests: Pick<Counter<"route" | "status">, "inc">;
  graphqlOperations: Pick<Counter<"tenant" | "type" | "outcome">, "inc">;
  graphqlDurationSeconds: Pick<Histogram<"type">, "observe">;
  /** refusals (abuse and authentication): recorded whatever METRICS says */
  authFailures: Counter<"reason">;
  wsRefusals: Counter<"reason">;
  httpRefusals: Counter<"reason">;
  wsFramesDropped: Counter;
}

export const apiMetrics: ApiMetrics = {
  registry: apiRegistry,
  httpRequests: new Counter({
    name: "lite_api_http_requests_total",
    help: "HTTP requests by route and status",
    labelNames: ["route", "status"] as const,
    registers: [apiRegistry],
  }),
  graphqlOperations: new Counter({
    name: "lite_api_graphql_operations_total",
    help: "GraphQL operations by tenant (`-` for operators), type and outcome (ok or the first error code)",
    labelNames: ["tenant", "type", "outcome"] as const,
    registers: [apiRegistry],
  }),
  graphqlDurationSeconds: new Histogram({
    name: "lite_api_graphql_duration_seconds",
    help: "GraphQL operation duration",
    labelNames: ["type"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [apiRegistry],
  }),
  authFailures: new Counter({
    name: "lite_api_auth_failures_total",
    help: "requests refused by authentication, by reason",
    labelNames: ["reason"] as const,
    registers: [apiRegistry],
  }),
  wsRefusals: new Counter({
    name: "lite_api_ws_refusals_total",
    help: "WebSocket connections and operations refused by a limit, by reason (the limit's name)",
    labelNames: ["reason"] as const,
    registers: [apiRegistry],
  }),
  httpRefusals: new Counter({
    name: "lite_api_http_refusals_total",
    help: "/graphql requests refused before their body was read (RATE_LIMITED), by reason",
    labelNames: ["reason"] as const,
    registers: [apiRegistry],
  }),
  wsFramesDropped: new Counter({
    name: "lite_api_ws_frames_dropped_total",
    help: "WebSocket frames dropped unread because their socket was being closed for abuse",
    registers: [apiRegistry],
  }),
};

const NOT_RECORDED = { inc: () => undefined, observe: () => undefined };

/**
 * METRICS=off: the same registry (process-level series and the refusal counters, which
 * count no served traffic) with the per-request series not recorded.
 */
export function withoutTrafficSeries(m: ApiMetrics): ApiMetrics {
  return { ...m, httpRequests: NOT_RECORDED, graphqlOperations: NOT_RECORDED, graphqlDurationSeconds: NOT_RECORDED };
}
