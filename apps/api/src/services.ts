import * as os from "node:os";
import type { Logger } from "pino";
import { systemClock, type Clock } from "@lite/core";
import { createDb, disconnectDb, type PrismaClient } from "@lite/db";
import { createRedis, RedisKeys, type Redis } from "@lite/redis";
import { AuditQueue, AuditWriter, Authenticator, type AuditSink } from "@lite/auth";
import { LiveMetricsRecorder, TenantLabels } from "@lite/telemetry";
import type { ApiEnv } from "./env";
import { apiMetrics, withoutTrafficSeries, type ApiMetrics } from "./metrics";
import { createCompletionServices, type CompletionServices } from "./completion/completion.services";

/**
 * The typed resources every resolver reaches through `context.services`. Built once per
 * API process (or per in-process test server). To add a service (admission, queues,
 * streams…): add the field here, build it in `createServices`, and register its shutdown
 * with `onClose` (closers run in reverse order).
 */
export interface ApiServices {
  env: ApiEnv;
  db: PrismaClient;
  redis: Redis;
  keys: RedisKeys;
  clock: Clock;
  log: Logger;
  /** record audit events durably: the Redis queue, or PostgreSQL directly while Redis refuses them */
  audit: AuditSink;
  /** appends queued audit events to the hash-chained log (one running per process) */
  auditWriter: AuditWriter;
  auth: Authenticator;
  metrics: ApiMetrics;
  /** the bounded `tenant` label of this process's Prometheus series (METRICS_TENANT_LABELS) */
  tenantLabels: TenantLabels;
  /** this process's share of the live tenant metrics (requests, throttled) in Redis; none with METRICS=off */
  live?: LiveMetricsRecorder;
  /** admission, fair scheduler (enqueue/cancel), token streams, model limits (completion/) */
  completions: CompletionServices;
  onClose(closer: () => Promise<void>): void;
  close(): Promise<void>;
}

export interface ServiceOverrides {
  clock?: Clock;
}

export async function createServices(env: ApiEnv, log: Logger, overrides: ServiceOverrides = {}): Promise<ApiServices> {
  const closers: Array<() => Promise<void>> = [];
  const onClose = (c: () => Promise<void>) => void closers.push(c);
  const clock = overrides.clock ?? systemClock;
  // A fixed pool (DATABASE_POOL_OPEN connections opened at start-up, bootstrap.ts): a burst
  // of requests never waits for new PostgreSQL connections, nor pays for them on a busy host.
  const db = createDb({ url: env.DATABASE_URL as string, keepOpen: env.DATABASE_POOL_OPEN });
  onClose(async () => {
    if (!(await disconnectDb(db)))
      log.warn("PostgreSQL pool did not close within 5 s (a connection died mid-transaction); leaving it");
  });
  const redis = createRedis({
    url: env.REDIS_URL as string,
    clusterNodes: env.REDIS_CLUSTER_NODES,
    connectionName: "api",
    commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
  });
  redis.on("error", (e) => log.warn({ err: e }, "redis connection error"));
  onClose(async () => void redis.disconnect());
  const keys = new RedisKeys(env.REDIS_PREFIX);
  const audit = new AuditQueue({
    redis,
    keys,
    db,
    clock,
    onError: (e) => log.warn({ err: e }, "could not enqueue an audit event; appending it to PostgreSQL directly"),
  });
  const auditWriter = new AuditWriter({ db, redis, keys, log, registry: apiMetrics.registry });
  const auth = new Authenticator({ db, redis, keys, clock, log });
  const tenantLabels = new TenantLabels({
    maxTenants: env.METRICS_TENANT_LABELS,
    registry: apiMetrics.registry,
    clock,
  });
  // METRICS=off: no live tenant metrics and no per-request series (metrics.ts withoutTrafficSeries).
  const metricsOn = env.METRICS === "on";
  const live = metricsOn
    ? new LiveMetricsRecorder({
        redis,
        keys,
        clock,
        processId: `api:${os.hostname()}-${process.pid}`,
        onError: (e) => log.debug({ err: e }, "could not write live tenant metrics (kept for the next flush)"),
      })
    : undefined;
  if (live) {
    const liveFlusher = live.start();
    onClose(() => liveFlusher.stop());
  }
  const completions = createCompletionServices({
    env,
    redis,
    keys,
    log,
    registry: apiMetrics.registry,
    sinks: metricsOn ? { tenantLabels, live } : undefined,
    onClose,
  });
  // Writers of a tenant, its quota or grants invalidate it in every API process.
  auth.onInvalidate((inv) => completions.caches.invalidate(inv));
  let closed = false;
  return {
    env,
    db,
    redis,
    keys,
    clock,
    log,
    audit,
    auditWriter,
    auth,
    metrics: metricsOn ? apiMetrics : withoutTrafficSeries(apiMetrics),
    tenantLabels,
    live,
    completions,
    onClose,
    async close() {
      if (closed) return;
      closed = true;
      for (const c of closers.reverse()) {
        await c().catch((e) => log.warn({ err: e }, "error while closing a service"));
      }
    },
  };
}
