import { z } from "zod";
import { base64KeyVar, intVar, parseEnv, parseEnvOrExit, serviceEnvFields } from "@lite/config";
import { tracingEnvFields } from "@lite/tracing";

/** The API's configuration: read from the environment once, here (RUNTIME.md "Environment"). */
export const ApiEnv = z.object({
  /** HTTP and WebSocket port */
  PORT: intVar(4000, 0, 65535),
  /** address to listen on (default all interfaces) */
  HOST: z
    .string()
    .optional()
    .transform((v) => v || "0.0.0.0"),
  ...serviceEnvFields,
  /** model a completion uses when it names none */
  DEFAULT_MODEL: z
    .string()
    .optional()
    .transform((v) => v || "default"),
  /** base64 of 32 bytes; wraps tenant data keys (private tiers, not built yet) */
  MASTER_KEY: base64KeyVar(32),
  /** bootstrap operator key, ≥ 16 characters, stored hashed */
  ADMIN_API_KEY: z
    .string()
    .optional()
    .refine((v) => v === undefined || v === "" || v.length >= 16, "must have at least 16 characters")
    .transform((v) => v || undefined),
  /** TEST ONLY: the createCompletion step boundary at which this process SIGKILLs itself (crash tests) */
  CREATE_FAULT_AT: z.enum(["intent", "admitted", "row"]).optional(),
  /** bytes of a prompt, above which createCompletion answers BAD_USER_INPUT */
  MAX_PROMPT_BYTES: intVar(65536, 1, 64 * 1024 * 1024),
  MAX_OUTPUT_TOKENS: intVar(4096, 1, 1_000_000),
  MAX_QUEUED_TOKENS: intVar(1_000_000, 1, Number.MAX_SAFE_INTEGER),
  STREAM_TTL_SECONDS: intVar(3600, 1, 30 * 24 * 3600),
  /** how long a createCompletion idempotency key returns its completion, hours */
  IDEMPOTENCY_TTL_HOURS: intVar(24, 1, 30 * 24),
  /** a WebSocket that has not sent connection_init by then is closed (4408), ms */
  WS_CONNECTION_INIT_TIMEOUT_MS: intVar(3000, 100, 60000),
  /** live operations on one WebSocket; the next one answers QUOTA_EXCEEDED */
  WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: intVar(32, 1, 10000),
  /** open WebSockets per API key in one API process; the next one is closed 4429 */
  WS_MAX_CONNECTIONS_PER_KEY: intVar(8, 1, 100000),
  /** open WebSockets per tenant (all its keys) in one API process; the next one is closed 4429 */
  WS_MAX_CONNECTIONS_PER_TENANT: intVar(16, 1, 100000),
  /** operations a tenant (an operator: its key) may start per second over all its WebSockets in one API process */
  WS_SUBSCRIBES_PER_SECOND: intVar(20, 1, 100000),
  /** operations it may start at once before WS_SUBSCRIBES_PER_SECOND applies; as many refusals in a row close the socket (4429) */
  WS_SUBSCRIBE_BURST: intVar(16, 1, 100000),
  /** a tenant refused RATE_LIMITED for starting operations too fast gets its burst back only after this long without a refusal, seconds (0: at once) */
  WS_SUBSCRIBE_BURST_COOLDOWN_SECONDS: intVar(10, 0, 86_400),
  /** failed authentications (a key presented and refused) one source may cost per window */
  AUTH_FAILURES_PER_SOURCE: intVar(20, 1, 1_000_000),
  /** the window of AUTH_FAILURES_PER_SOURCE, seconds */
  AUTH_FAILURE_WINDOW_SECONDS: intVar(60, 1, 86_400),
  /** refused HTTP requests (400, 405, 413, 415) a tenant may make at once before CLIENT_ERRORS_PER_SECOND applies */
  CLIENT_ERROR_BURST: intVar(100, 1, 1_000_000),
  /** refill rate of CLIENT_ERROR_BURST; past it, RATE_LIMITED before the body is read */
  CLIENT_ERRORS_PER_SECOND: intVar(5, 1, 1_000_000),
  /** a request refused as RATE_LIMITED before its body is read is answered after min(Retry-After, this), ms (0: at once) */
  REFUSAL_TARPIT_MS: intVar(1000, 0, 60_000),
  /** PostgreSQL connections opened at start-up and kept open (the pool holds 10; 0: opened on demand, closed after 10 s idle) */
  DATABASE_POOL_OPEN: intVar(10, 0, 10),
  /** longest a request waits for one Redis command (Redis unreachable: then UNAVAILABLE, 503 + Retry-After), ms */
  REDIS_COMMAND_TIMEOUT_MS: intVar(1000, 50, 60_000),
  /** smallest `intervalMs` a tenantMetrics subscription may ask for, ms (smaller: BAD_USER_INPUT) */
  TENANT_METRICS_MIN_INTERVAL_MS: intVar(500, 100, 60_000),
  /** live tenantMetrics subscriptions on one WebSocket; the next one answers QUOTA_EXCEEDED */
  TENANT_METRICS_SUBSCRIPTIONS_PER_CONNECTION: intVar(4, 1, 1000),
  /** grace for in-flight requests on SIGTERM, ms */
  SHUTDOWN_GRACE_MS: intVar(10000, 0, 600000),
  /** OpenTelemetry traces (libs/tracing): off unless OTEL_TRACES_EXPORTER or an OTLP endpoint is set */
  ...tracingEnvFields,
});
export type ApiEnv = z.output<typeof ApiEnv>;

/** HTTP body limit: comfortably above MAX_PROMPT_BYTES (JSON escaping can grow a prompt up to 6×). */
export function bodyLimitBytes(env: Pick<ApiEnv, "MAX_PROMPT_BYTES">): number {
  return env.MAX_PROMPT_BYTES * 6 + 64 * 1024;
}

/** For entry points: one line per bad variable, exit 1. */
export function loadApiEnv(env: NodeJS.ProcessEnv = process.env): ApiEnv {
  return parseEnvOrExit(ApiEnv, env);
}

/** For in-process servers (tests): throws ConfigError instead of exiting. */
export function parseApiEnv(env: NodeJS.ProcessEnv): ApiEnv {
  return parseEnv(ApiEnv, env);
}
