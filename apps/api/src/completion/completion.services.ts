import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Redis } from "ioredis";
import { readModelLimits } from "@lite/manifest";
import { createRedis, type RedisKeys } from "@lite/redis";
import { Admission, FairScheduler } from "@lite/scheduler";
import { TokenStreams } from "@lite/stream";
import { createCompletionCaches, type CompletionCaches } from "@lite/completions";
import {
  API_COMPLETION_METRICS_OFF,
  createApiCompletionMetrics,
  type ApiCompletionMetrics,
  type TenantMetricSinks,
} from "@lite/telemetry";

/**
 * What the completion resolvers need beyond the base services: admission, the fair
 * scheduler (producer side only: enqueue and cancel; API processes never dispatch, so
 * they never run the stalled sweep), token streams, model limits and per-tenant metrics.
 */
export interface CompletionServices {
  admission: Admission;
  scheduler: FairScheduler;
  streams: TokenStreams;
  metrics: ApiCompletionMetrics;
  /** the tenant, quota and grants createCompletion reads, cached (invalidated through libs/auth) */
  caches: CompletionCaches;
  /** the model's context length from its manifest, or undefined when the API cannot read it */
  maxContextTokens(modelName: string): number | undefined;
}

export interface CompletionServicesOptions {
  env: {
    REDIS_URL?: string;
    REDIS_CLUSTER_NODES?: string[];
    MAX_QUEUED_TOKENS: number;
    STREAM_TTL_SECONDS: number;
    MODEL_DIR: string;
    SCHEDULER_MODE: "fair" | "fifo";
    REDIS_COMMAND_TIMEOUT_MS: number;
    /** off: the admission counters are not recorded (default on) */
    METRICS?: "on" | "off";
  };
  redis: Redis;
  keys: RedisKeys;
  log: Logger;
  registry: Registry;
  /** the bounded tenant label and the live metrics the admission counters also feed */
  sinks?: TenantMetricSinks;
  onClose(closer: () => Promise<void>): void;
}

export function createCompletionServices(o: CompletionServicesOptions): CompletionServices {
  // Producer side only (Queue.add, remove): BullMQ wants maxRetriesPerRequest null, so without
  // the deadline an add during an outage would wait for the whole outage.
  const bull = createRedis({
    url: o.env.REDIS_URL as string,
    clusterNodes: o.env.REDIS_CLUSTER_NODES,
    connectionName: "api-bullmq",
    forBullmq: true,
    commandTimeoutMs: o.env.REDIS_COMMAND_TIMEOUT_MS,
  });
  bull.on("error", (e) => o.log.warn({ err: e }, "redis (bullmq) connection error"));
  const scheduler = new FairScheduler({
    redis: o.redis,
    bullConnection: bull,
    keys: o.keys,
    log: o.log,
    singleQueue: o.env.SCHEDULER_MODE === "fifo",
  });
  const streams = new TokenStreams({ redis: o.redis, keys: o.keys, ttlSeconds: o.env.STREAM_TTL_SECONDS });
  o.onClose(async () => {
    await streams.close();
    await scheduler.close();
    bull.disconnect();
  });
  const contexts = new Map<string, number | undefined>();
  return {
    admission: new Admission({ redis: o.redis, keys: o.keys, maxQueuedTokens: o.env.MAX_QUEUED_TOKENS }),
    scheduler,
    streams,
    metrics: o.env.METRICS === "off" ? API_COMPLETION_METRICS_OFF : createApiCompletionMetrics(o.registry, o.sinks),
    caches: createCompletionCaches(),
    maxContextTokens(modelName) {
      if (!contexts.has(modelName))
        contexts.set(modelName, readModelLimits(o.env.MODEL_DIR, modelName)?.maxContextTokens);
      return contexts.get(modelName);
    },
  };
}
