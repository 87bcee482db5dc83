import * as os from "node:os";
import { z } from "zod";
import { enumVar, expertCacheEnvFields, intVar, listVar, parseEnvOrExit, serviceEnvFields } from "@lite/config";
import { tracingEnvFields } from "@lite/tracing";

/** The worker's configuration: read from process.env once, here (RUNTIME.md "Environment"). */
export const WorkerEnv = z.object({
  ...serviceEnvFields,
  ...expertCacheEnvFields,
  WORKER_ID: z
    .string()
    .optional()
    .transform((v) => v || `${os.hostname()}-${process.pid}`),
  /** sequences per decode step */
  WORKER_BATCH_SIZE: intVar(16, 1, 1024),
  /** sequences held beyond the batch for tenants not at their cap; default max(2, batch/4) */
  WORKER_HOLD_RESERVE: intVar(-1, -1, 1024),
  /**
   * CPU priority (nice, 0..19) of the worker's threads; 0 (default) keeps the one it was
   * started with. 10 lets an API on the same cores preempt the decode steps, but also lets any
   * other busy process of the session starve the worker (process-priority.ts)
   */
  WORKER_NICE: intVar(0, 0, 19),
  ORT_EXECUTION_PROVIDERS: listVar(["cpu"]),
  ORT_INTRA_OP_THREADS: intVar(1, 1, 256),
  /** how long a finished completion's stream can be replayed */
  STREAM_TTL_SECONDS: intVar(3600, 1, 30 * 24 * 3600),
  /** job lock duration, ms (renewed every half): a worker silent this long loses its jobs to others */
  WORKER_LOCK_MS: intVar(4000, 500, 3600000),
  /** how often the stalled-job check runs, ms: a dead worker's jobs move within WORKER_LOCK_MS + this */
  WORKER_STALLED_INTERVAL_MS: intVar(1000, 200, 3600000),
  /**
   * heartbeat TTL, ms (beats every quarter); a worker whose heartbeat expired has its jobs
   * taken over by the others within about this + a quarter, without waiting for WORKER_LOCK_MS
   * (libs/scheduler worker-heartbeats.ts); 0: off
   */
  WORKER_HEARTBEAT_MS: intVar(1000, 0, 3600000).refine((v) => v === 0 || v >= 100, {
    message: "must be 0 (off) or at least 100 ms",
  }),
  /** replays in a row that ended before one decode step, no token streamed, that make a job poison (failed) */
  WORKER_POISON_STARTS: intVar(3, 2, 1000),
  /** stalls (lock lapses) a job survives before it fails whatever its progress: a last resort */
  WORKER_MAX_STALLED: intVar(1000, 1, 100000),
  /** how often the reconciler looks for creates a crashed API left half-done, ms */
  RECONCILE_INTERVAL_MS: intVar(2000, 100, 3600000),
  /** a create still unfinished after this long is taken for crashed and repaired, ms */
  RECONCILE_GRACE_MS: intVar(10000, 100, 3600000),
  /** TEST ONLY: a job of this tenant kills its worker as it enters its first decode step (a poison job, for the crash tests) */
  WORKER_FAULT_CRASH_TENANT: z.string().min(1).optional(),
  /** how often an idle worker looks for work, ms */
  WORKER_IDLE_POLL_MS: intVar(10, 1, 10000),
  /** models to load at start (comma-separated), so the first job does not wait for them */
  WORKER_PRELOAD_MODELS: listVar([]),
  /** how long SIGTERM lets running sequences finish before leaving them to others, ms */
  WORKER_SHUTDOWN_GRACE_MS: intVar(30000, 0, 3600000),
  /** 1: sequences that have not run yet get their first token in a small step of their own (lower TTFT); 0: they wait for the next full step */
  WORKER_FIRST_TOKEN_STEPS: intVar(1, 0, 1),
  /** pause after each decode step, ms: for tests and demos that need completions to last */
  WORKER_STEP_DELAY_MS: intVar(0, 0, 60000),
  /**
   * Prometheus /metrics (ADMIN key) on this port, default 9464 (a free port instead, with a
   * warning, when it is taken); 0 = any free port; -1 = off. The port is logged in "worker ready".
   */
  WORKER_METRICS_PORT: intVar(9464, -1, 65535),
  /**
   * on (default): a tenant's first use of an expert it has not used since the expert became
   * resident is emitted no sooner than a load from its tier would take, even when another
   * tenant made it hot (libs/model timing-defence.ts); off: no padding
   */
  TIMING_DEFENCE: enumVar(["on", "off"], "on"),
  /**
   * on (default): the next-layer experts of a sequence parked on a cold expert are predicted
   * (the next router on the current hidden state) and fetched off the decode step into free cache room, within the
   * tenant's prefetchBytesPerSecond (libs/cache expert-prefetcher.ts); off: no prediction, no prefetch
   */
  PREFETCH: enumVar(["on", "off"], "on"),
  /**
   * BENCHMARK BASELINE, not for production. fair (default): per-tenant quotas and fair
   * eviction (libs/cache victim-choice.ts); lru: a plain global LRU that enforces no
   * per-tenant quota (bench/memory.bench.ts compares the two)
   */
  EXPERT_CACHE_EVICTION: enumVar(["fair", "lru"], "fair"),
  /**
   * BENCHMARK BASELINE, never in production: nothing is billed. false (default): every
   * completion this worker ends writes its usage events (libs/telemetry usage-writer.ts);
   * true: none are written (bench/telemetry.bench.ts measures what recording costs). The
   * worker logs a warning at start when it is set
   */
  BENCHMARK_BASELINE_SKIP_USAGE: enumVar(["false", "true"], "false"),
  /** OpenTelemetry traces (libs/tracing): off unless OTEL_TRACES_EXPORTER or an OTLP endpoint is set */
  ...tracingEnvFields,
});
export type WorkerEnv = z.output<typeof WorkerEnv>;

export function loadWorkerEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv {
  return parseEnvOrExit(WorkerEnv, env);
}
