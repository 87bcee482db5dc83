import type { Logger } from "pino";
import { CompletionRowStore, CreateIntents, startReconciler } from "@lite/completions";
import { systemClock } from "@lite/core";
import { createDb, disconnectDb, type PrismaClient } from "@lite/db";
import {
  BatchEngine,
  admissionPort,
  cachingModelProvider,
  errText,
  schedulerWorkSource,
  streamTokenSink,
  type CachingModelProvider,
  type TokenSink,
  type WorkHandle,
  type WorkSource,
} from "@lite/engine";
import { createRedis, RedisKeys } from "@lite/redis";
import { Admission, FairScheduler } from "@lite/scheduler";
import { TokenStreams } from "@lite/stream";
import {
  InterTokenClock,
  LiveMetricsRecorder,
  TenantLabels,
  createLogger,
  createRegistry,
  createWorkerMetrics,
  type WorkerMetrics,
} from "@lite/telemetry";
import type { Registry } from "prom-client";
import type { WorkerEnv } from "./env";
import {
  capacityCheckedModels,
  createWorkerExpertCache,
  liveCacheReadings,
  type WorkerExpertCache,
} from "./expert-cache";
import { skippedUsagePort, usagePort } from "./usage-port";
import { createWorkerKvLedger } from "./kv-quotas";

/**
 * The worker's composition: its connections, the libraries over them, and the batch
 * engine (libs/engine) wired to its ports. Nothing here decides anything.
 */

export function createWorkerLogger(env: WorkerEnv): Logger {
  return createLogger({ name: "worker", level: env.LOG_LEVEL, base: { workerId: env.WORKER_ID } });
}

export interface WorkerConnections {
  db: PrismaClient;
  /** commands of the engine's ports (auto-pipelined) */
  redis: ReturnType<typeof createRedis>;
  /** BullMQ's own connection */
  bull: ReturnType<typeof createRedis>;
}

export function connectWorker(env: WorkerEnv, log: Logger): WorkerConnections {
  const db = createDb({ url: env.DATABASE_URL as string, poolSize: 5 });
  // Auto-pipelining: a decode step's appends, progress, charges and cancel checks go out in one write.
  const redis = createRedis({
    url: env.REDIS_URL as string,
    clusterNodes: env.REDIS_CLUSTER_NODES,
    connectionName: `worker:${env.WORKER_ID}`,
    autoPipelining: true,
  });
  const bull = createRedis({
    url: env.REDIS_URL as string,
    clusterNodes: env.REDIS_CLUSTER_NODES,
    connectionName: `worker-bull:${env.WORKER_ID}`,
    forBullmq: true,
  });
  for (const [name, c] of [
    ["redis", redis],
    ["bullmq", bull],
  ] as const)
    c.on("error", (e) => log.warn({ err: errText(e), connection: name }, "redis connection error"));
  return { db, redis, bull };
}

export interface Worker {
  engine: BatchEngine;
  scheduler: FairScheduler;
  /** repairs creates a crashed API left half-done (libs/completions reconcile.ts); started by main */
  startReconciler(): { stop(): Promise<void> };
  models: CachingModelProvider;
  /** the expert cache every model of this worker loads through (libs/cache) */
  expertCache: WorkerExpertCache;
  registry: Registry;
  /** this worker's share of the live tenant metrics in Redis (Tenant.metrics); started by main; none with METRICS=off */
  live?: LiveMetricsRecorder;
}

/**
 * The token sink, timed: each append of a completion's tokens after its first in this worker
 * counts an inter-token gap (libs/telemetry inter-token-clock.ts).
 */
function timedTokens(sink: TokenSink, metrics: WorkerMetrics): TokenSink {
  const clock = new InterTokenClock((tenant, ms, n) => {
    for (let i = 0; i < n; i++) metrics.interTokenSeconds.observe({ tenant }, ms / 1000);
  });
  return {
    ...sink,
    async append(batch) {
      await sink.append(batch);
      for (const a of batch) clock.appended(a.tenantId, a.completionId, a.tokens.length);
    },
    async finish(tenantId, completionId, tokens, finishReason) {
      await sink.finish(tenantId, completionId, tokens, finishReason);
      clock.ended(completionId);
    },
  };
}

/**
 * Test-only fault injection (WORKER_FAULT_CRASH_TENANT, unset in production): a job of this
 * tenant kills the process as it enters its first decode step, as a job that crashes the
 * model would; a job already judged poison passes, so the engine fails it.
 */
function crashingOn(tenantId: string | undefined, work: WorkSource): WorkSource {
  if (!tenantId) return work;
  return {
    ...work,
    async next(excludeTenants) {
      const handle = await work.next(excludeTenants);
      if (handle?.tenantId !== tenantId || handle.deferredFailure) return handle;
      const crashing: WorkHandle = Object.create(handle);
      crashing.entering = async () => {
        await handle.entering?.();
        process.kill(process.pid, "SIGKILL");
      };
      return crashing;
    },
  };
}

export function composeWorker(env: WorkerEnv, c: WorkerConnections, log: Logger): Worker {
  const keys = new RedisKeys(env.REDIS_PREFIX);
  const scheduler = new FairScheduler({
    redis: c.redis,
    bullConnection: c.bull,
    keys,
    log,
    lockDurationMs: env.WORKER_LOCK_MS,
    stalledIntervalMs: env.WORKER_STALLED_INTERVAL_MS,
    heartbeatMs: env.WORKER_HEARTBEAT_MS,
    maxStalledCount: env.WORKER_MAX_STALLED,
    singleQueue: env.SCHEDULER_MODE === "fifo",
  });
  const streams = new TokenStreams({ redis: c.redis, keys, ttlSeconds: env.STREAM_TTL_SECONDS });
  const admission = new Admission({ redis: c.redis, keys, maxQueuedTokens: Number.MAX_SAFE_INTEGER });
  const registry = createRegistry({ labels: { worker: env.WORKER_ID } });
  // METRICS=off: no per-tenant series, no live metrics, no metric update per token or step;
  // the registry is still served (empty of tenant series).
  const metricsOn = env.METRICS === "on";
  const tenantLabels = metricsOn ? new TenantLabels({ maxTenants: env.METRICS_TENANT_LABELS, registry }) : undefined;
  const live = metricsOn
    ? new LiveMetricsRecorder({
        redis: c.redis,
        keys,
        processId: env.WORKER_ID,
        onError: (e) => log.debug({ err: errText(e) }, "could not write live tenant metrics (kept for the next flush)"),
      })
    : undefined;
  const metrics = metricsOn ? createWorkerMetrics(registry, { tenantLabels, live }) : undefined;
  const stepper: { engine?: BatchEngine } = {};
  const expertCache = createWorkerExpertCache(
    {
      hotCapacityBytes: env.HOT_CAPACITY_BYTES,
      warmCapacityBytes: env.WARM_CAPACITY_BYTES,
      epochUses: env.EXPERT_CACHE_EPOCH_USES,
      quotaTtlMs: env.EXPERT_CACHE_QUOTA_TTL_SECONDS * 1000,
      prefetch: env.PREFETCH === "on",
      eviction: env.EXPERT_CACHE_EVICTION,
      // the engine is built below; until then nothing steps
      loadContended: () => stepper.engine?.wantsThread ?? false,
    },
    c.db,
    metricsOn ? registry : undefined,
    tenantLabels,
  );
  // Per-tenant KV quotas over every model of this worker (docs/KV-QUOTAS.md).
  const kvLedger = createWorkerKvLedger(c.db, metricsOn ? registry : undefined, {
    ttlMs: env.EXPERT_CACHE_QUOTA_TTL_SECONDS * 1000,
    tenantLabels,
  });
  live?.readGauges(() => liveCacheReadings(expertCache.residency, kvLedger.bytesByTenant()));
  const loaded = cachingModelProvider({
    modelDir: env.MODEL_DIR,
    publicKey: env.MODEL_PUBLIC_KEY,
    executionProviders: env.ORT_EXECUTION_PROVIDERS,
    intraOpThreads: env.ORT_INTRA_OP_THREADS,
    timingDefence: env.TIMING_DEFENCE === "on",
    onPaddedFirstUses: (tenant, n) => metrics?.paddedFirstUses.inc({ tenant }, n),
    expertStore: expertCache.storeFor,
    kvLedger,
    logger: log,
  });
  const models = capacityCheckedModels(loaded, expertCache.residency, log);
  const engine = new BatchEngine(
    {
      workerId: env.WORKER_ID,
      batchSize: env.WORKER_BATCH_SIZE,
      reserve: env.WORKER_HOLD_RESERVE >= 0 ? env.WORKER_HOLD_RESERVE : undefined,
      idlePollMs: env.WORKER_IDLE_POLL_MS,
      shutdownGraceMs: env.WORKER_SHUTDOWN_GRACE_MS,
      stepDelayMs: env.WORKER_STEP_DELAY_MS,
      firstTokenSteps: env.WORKER_FIRST_TOKEN_STEPS === 1,
      fifo: env.SCHEDULER_MODE === "fifo",
    },
    {
      models,
      work: crashingOn(
        env.WORKER_FAULT_CRASH_TENANT,
        schedulerWorkSource(scheduler, env.WORKER_ID, {
          progressOf: (tenantId, completionId) => streams.lastIndex(tenantId, completionId),
          startsWithoutProgress: env.WORKER_POISON_STARTS,
          log,
        }),
      ),
      store: new CompletionRowStore(c.db),
      tokens: metrics ? timedTokens(streamTokenSink(streams), metrics) : streamTokenSink(streams),
      admission: admissionPort(admission),
      usage:
        env.BENCHMARK_BASELINE_SKIP_USAGE === "true"
          ? skippedUsagePort(expertCache.prefetcher.usage)
          : usagePort(c.db, expertCache.prefetcher.usage),
      metrics,
      logger: log,
    },
  );
  stepper.engine = engine;
  const reconcile = {
    db: c.db,
    admission,
    scheduler,
    streams,
    intents: new CreateIntents(c.redis, keys),
    clock: systemClock,
    log,
  };
  return {
    engine,
    scheduler,
    models,
    expertCache,
    registry,
    live,
    startReconciler: () =>
      startReconciler(reconcile, { intervalMs: env.RECONCILE_INTERVAL_MS, graceMs: env.RECONCILE_GRACE_MS }),
  };
}

/** After engine.stop(): closes what the worker opened (the metrics server right after the scheduler). */
export async function closeWorker(
  w: Worker,
  c: WorkerConnections,
  log: Logger,
  metricsServer?: { close(): Promise<void> },
): Promise<void> {
  await w.scheduler.close().catch((e) => log.warn({ err: errText(e) }, "scheduler close failed"));
  await metricsServer?.close();
  await w.models.close().catch(() => undefined);
  await w.expertCache.prefetcher.close();
  await w.expertCache.residency.close();
  await disconnectDb(c.db).catch(() => false);
  c.redis.disconnect();
  c.bull.disconnect();
}
