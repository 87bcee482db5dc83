/**
 * The worker process: loads models on demand, takes completion jobs from the fair
 * dispatcher and runs them in a continuous batch (engine/batch-engine.ts), streaming
 * tokens to Redis and finalising rows and usage in PostgreSQL.
 *
 * SIGTERM / SIGINT: stop taking jobs, let running sequences finish (bounded by
 * WORKER_SHUTDOWN_GRACE_MS; what is left is resumed by another worker), exit 0.
 */
import "reflect-metadata";
import pino from "pino";
import { createDb } from "@lite/db";
import { createRedis, RedisKeys } from "@lite/redis";
import { Admission, FairScheduler } from "@lite/scheduler";
import { TokenStreams } from "@lite/stream";
import { createRegistry, createWorkerMetrics } from "@lite/telemetry";
import { loadWorkerEnv } from "./env";
import { BatchEngine, errText } from "./engine/batch-engine";
import { prismaCompletionStore } from "./engine/completion-store";
import { cachingModelProvider } from "./engine/model-provider";
import { startMetricsServer } from "./metrics-server";
import { streamTokenSink } from "./stream-sink";
import { admissionPort, schedulerWorkSource, usagePort } from "./wiring";

async function main(): Promise<void> {
  const env = loadWorkerEnv();
  const log = pino({
    name: "worker",
    level: env.LOG_LEVEL,
    base: { service: "worker", workerId: env.WORKER_ID, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ["prompt", "*.prompt"], censor: "[redacted]" },
  });
  const db = createDb({ url: env.DATABASE_URL as string, poolSize: 5 });
  // Auto-pipelining: a decode step's appends, progress, charges and cancel checks go out in one write.
  const redis = createRedis({
    url: env.REDIS_URL as string,
    connectionName: `worker:${env.WORKER_ID}`,
    autoPipelining: true,
  });
  const bull = createRedis({
    url: env.REDIS_URL as string,
    connectionName: `worker-bull:${env.WORKER_ID}`,
    forBullmq: true,
  });
  for (const [name, c] of [
    ["redis", redis],
    ["bullmq", bull],
  ] as const)
    c.on("error", (e) => log.warn({ err: errText(e), connection: name }, "redis connection error"));
  const keys = new RedisKeys(env.REDIS_PREFIX);

  const scheduler = new FairScheduler({
    redis,
    bullConnection: bull,
    keys,
    log,
    lockDurationMs: env.WORKER_LOCK_MS,
    stalledIntervalMs: env.WORKER_STALLED_INTERVAL_MS,
    maxStalledCount: env.WORKER_MAX_STALLED,
    singleQueue: env.SCHEDULER_MODE === "fifo",
  });
  const streams = new TokenStreams({ redis, keys, ttlSeconds: env.STREAM_TTL_SECONDS });
  const admission = new Admission({ redis, keys, maxQueuedTokens: Number.MAX_SAFE_INTEGER });
  const registry = createRegistry({ labels: { worker: env.WORKER_ID } });
  const metrics = createWorkerMetrics(registry);
  const models = cachingModelProvider({
    modelDir: env.MODEL_DIR,
    publicKey: env.MODEL_PUBLIC_KEY,
    executionProviders: env.ORT_EXECUTION_PROVIDERS,
    intraOpThreads: env.ORT_INTRA_OP_THREADS,
    logger: log,
  });
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
      work: schedulerWorkSource(scheduler, env.WORKER_ID),
      store: prismaCompletionStore(db),
      tokens: streamTokenSink(streams),
      admission: admissionPort(admission),
      usage: usagePort(db),
      metrics,
      logger: log,
    },
  );

  // Load the default model up front when asked, so the first job does not pay for it.
  if (env.WORKER_PRELOAD_MODELS.length > 0) {
    for (const name of env.WORKER_PRELOAD_MODELS) await models.get(name);
  }
  const metricsServer =
    env.WORKER_METRICS_PORT >= 0 ? await startMetricsServer(registry, env.WORKER_METRICS_PORT) : undefined;

  let stopping: Promise<void> | undefined;
  const shutdown = (signal: string) => {
    if (stopping) return;
    log.info({ signal }, "stopping: no new jobs, finishing running sequences");
    stopping = (async () => {
      await engine.stop();
      await scheduler.close().catch((e) => log.warn({ err: errText(e) }, "scheduler close failed"));
      await metricsServer?.close();
      await models.close().catch(() => undefined);
      await db.$disconnect().catch(() => undefined);
      redis.disconnect();
      bull.disconnect();
      log.info("worker stopped");
    })();
    stopping.then(
      () => process.exit(0),
      (e) => {
        log.error({ err: errText(e) }, "error while stopping");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));

  engine.start();
  log.info(
    {
      batchSize: env.WORKER_BATCH_SIZE,
      schedulerMode: env.SCHEDULER_MODE,
      metricsPort: metricsServer?.port ?? null,
      modelDir: env.MODEL_DIR,
    },
    "worker ready",
  );
}

main().catch((e) => {
  process.stderr.write(`worker failed to start: ${errText(e)}\n`);
  process.exit(1);
});
