import * as path from "node:path";
import { ensureModel } from "@lite/model";
import { RedisKeys } from "@lite/redis";
import { Admission } from "@lite/scheduler";
import { createTenantWithKey, createTestEnv, type TestEnv } from "@lite/testing";
import { GqlHttp, wsClient } from "../../../libs/testing/src/gql-client";
import { spawnWorker, type WorkerProcess } from "../../../libs/testing/src/worker";
import { startApiServer, type RunningApiServer } from "../../../apps/api/src/server";

/**
 * One end-to-end stack per test file: a fresh database and Redis prefix (createTestEnv),
 * the tiny model built once per run under TEST_RUN_DIR, an in-process API server on a free
 * port, and REAL worker processes. Locks and stall checks are short so crash recovery is
 * quick.
 */
export const E2E_WORKER_ENV = {
  WORKER_LOCK_MS: "1500",
  WORKER_STALLED_INTERVAL_MS: "500",
  WORKER_SHUTDOWN_GRACE_MS: "5000",
  LOG_LEVEL: process.env.WORKER_LOG_LEVEL ?? "info",
};

export function modelDir(): string {
  const runDir = process.env.TEST_RUN_DIR ?? path.resolve(__dirname, "../../../var/test-models");
  return path.join(runDir, "models");
}

export interface Stack {
  env: TestEnv;
  api: RunningApiServer;
  admin: GqlHttp;
  workers: WorkerProcess[];
  admission: Admission;
  modelDir: string;
  spawnWorker(opts?: { batchSize?: number; env?: Record<string, string>; id?: string }): Promise<WorkerProcess>;
  tenant(opts?: {
    weight?: number;
    quota?: Record<string, unknown>;
    suspended?: boolean;
  }): Promise<{ tenantId: string; secret: string; http: GqlHttp }>;
  close(): Promise<void>;
}

export async function startStack(
  opts: {
    workers?: number;
    batchSize?: number;
    workerEnv?: Record<string, string>;
    apiEnv?: Record<string, string>;
    /** rewrites the service URLs the API and workers use (fault tests route them through a proxy) */
    serviceUrl?: (service: "postgres" | "redis", url: string) => string;
  } = {},
): Promise<Stack> {
  const dir = modelDir();
  await ensureModel({ modelDir: dir, modelName: "tiny", preset: "tiny" });
  const env = await createTestEnv();
  const via = opts.serviceUrl ?? ((_service: "postgres" | "redis", url: string) => url);
  const api = await startApiServer({
    port: 0,
    host: "127.0.0.1",
    env: {
      DATABASE_URL: via("postgres", env.databaseUrl),
      REDIS_URL: via("redis", env.redisUrl),
      REDIS_PREFIX: env.redisPrefix,
      MODEL_DIR: dir,
      DEFAULT_MODEL: "tiny",
      LOG_LEVEL: process.env.API_LOG_LEVEL ?? "silent",
      ADMIN_API_KEY: "e2e-admin-key-0123456789",
      ...opts.apiEnv,
    },
  });
  const workers: WorkerProcess[] = [];
  const stack: Stack = {
    env,
    api,
    admin: new GqlHttp(api.url, "e2e-admin-key-0123456789"),
    workers,
    admission: new Admission({ redis: env.redis, keys: new RedisKeys(env.redisPrefix), maxQueuedTokens: 1e9 }),
    modelDir: dir,
    async spawnWorker(o = {}) {
      const w = spawnWorker({
        databaseUrl: via("postgres", env.databaseUrl),
        redisUrl: via("redis", env.redisUrl),
        redisPrefix: env.redisPrefix,
        modelDir: dir,
        workerId: o.id,
        batchSize: o.batchSize ?? opts.batchSize ?? 8,
        env: { ...E2E_WORKER_ENV, WORKER_PRELOAD_MODELS: "tiny", ...opts.workerEnv, ...o.env },
        echo: process.env.E2E_ECHO === "1",
      });
      workers.push(w);
      await w.ready();
      return w;
    },
    async tenant(o = {}) {
      const t = await createTenantWithKey(env.db, { weight: o.weight ?? 1, suspended: o.suspended });
      if (o.quota) await env.db.quota.update({ where: { tenantId: t.tenantId }, data: o.quota });
      return { tenantId: t.tenantId, secret: t.secret, http: new GqlHttp(api.url, t.secret) };
    },
    async close() {
      await Promise.all(workers.map((w) => w.stop(10000)));
      await api.close();
      await env.close();
    },
  };
  for (let i = 0; i < (opts.workers ?? 1); i++) await stack.spawnWorker();
  return stack;
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 20000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export { wsClient };
