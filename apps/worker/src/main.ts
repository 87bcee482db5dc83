/**
 * The worker process: loads models on demand, takes completion jobs from the fair
 * dispatcher and runs them in a continuous batch (libs/engine), streaming tokens to Redis
 * and finalising rows and usage in PostgreSQL. This file only starts and stops it.
 *
 * SIGTERM / SIGINT: stop taking jobs, let running sequences finish (bounded by
 * WORKER_SHUTDOWN_GRACE_MS; what is left is resumed by another worker), exit 0.
 */
import "reflect-metadata";
import type { Logger } from "pino";
import { WORKER_NODE_FLAGS } from "@lite/config";
import { errText } from "@lite/engine";
import { RedisKeys } from "@lite/redis";
import { startTracing, tracingOptionsOf } from "@lite/tracing";
import { closeWorker, composeWorker, connectWorker, createWorkerLogger } from "./compose";
import { loadWorkerEnv } from "./env";
import { lowerProcessPriority } from "./process-priority";
import { adminKeyAuthorizer } from "./metrics-auth";
import { startMetricsServer } from "./metrics-server";

async function main(): Promise<void> {
  const env = loadWorkerEnv();
  const log = createWorkerLogger(env);
  const missingFlags = WORKER_NODE_FLAGS.filter((f) => !process.execArgv.includes(f));
  if (missingFlags.length > 0)
    log.warn(
      { missing: missingFlags },
      "started without the worker's node flags (libs/config worker-node-flags.ts): expect a full garbage collection every second or so under load",
    );
  if (env.WORKER_NICE > 0) {
    const set = lowerProcessPriority(env.WORKER_NICE);
    if (set.failed > 0) log.warn({ ...set, nice: env.WORKER_NICE }, "could not lower the priority of every thread");
  }
  const traceOpts = tracingOptionsOf(env, "lite-llm-worker");
  const tracing = startTracing(traceOpts);
  if (env.BENCHMARK_BASELINE_SKIP_USAGE === "true")
    log.warn(
      "BENCHMARK_BASELINE_SKIP_USAGE=true: this worker records NO usage events, nothing it runs is billed (a benchmark baseline, never for production)",
    );
  if (env.METRICS === "off") log.warn("METRICS=off: no per-tenant Prometheus series and no live tenant metrics");
  if (tracing.enabled)
    log.info({ exporters: traceOpts.exporters, service: traceOpts.serviceName }, "OpenTelemetry traces on");
  const connections = connectWorker(env, log);
  const worker = composeWorker(env, connections, log);
  // Load the default model up front when asked, so the first job does not pay for it.
  for (const name of env.WORKER_PRELOAD_MODELS) await worker.models.get(name);
  const metricsServer =
    env.WORKER_METRICS_PORT >= 0
      ? await startMetricsServer(
          worker.registry,
          env.WORKER_METRICS_PORT,
          adminKeyAuthorizer(connections.db, connections.redis, new RedisKeys(env.REDIS_PREFIX)),
          log,
        )
      : undefined;

  const reconciler = worker.startReconciler();
  const liveMetrics = worker.live?.start();
  onStopSignal(log, async () => {
    await reconciler.stop();
    await worker.engine.stop();
    // After the engine: its last tokens are counted; before the connections close.
    await liveMetrics?.stop();
    await closeWorker(worker, connections, log, metricsServer);
    // Last: the spans of the completions finished while stopping are exported.
    await tracing.shutdown().catch((e) => log.warn({ err: errText(e) }, "could not flush traces"));
  });
  worker.engine.start();
  log.info(
    {
      batchSize: env.WORKER_BATCH_SIZE,
      nice: env.WORKER_NICE,
      schedulerMode: env.SCHEDULER_MODE,
      metricsPort: metricsServer?.port ?? null,
      modelDir: env.MODEL_DIR,
    },
    "worker ready",
  );
}

/** On the first SIGTERM or SIGINT: run `stop` once, then exit 0 (1 when stopping failed). */
function onStopSignal(log: Logger, stop: () => Promise<void>): void {
  let stopping: Promise<void> | undefined;
  const shutdown = (signal: string) => {
    if (stopping) return;
    log.info({ signal }, "stopping: no new jobs, finishing running sequences");
    stopping = stop().then(() => log.info("worker stopped"));
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
}

main().catch((e) => {
  process.stderr.write(`worker failed to start: ${errText(e)}\n`);
  process.exit(1);
});
