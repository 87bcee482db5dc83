import * as os from "node:os";
import * as path from "node:path";
import type { PresetName } from "@lite/model";
import type { ApiHandle, ApiLauncher } from "./api";
import { REPO_ROOT } from "./child-process";
import { GqlHttp } from "./gql-http";
import { createTestEnv, type TestEnv, type TestEnvOptions } from "./services";
import { createTenant, type CreateTenantOptions, type TenantWithKey } from "./tenants";
import { spawnWorker, type WorkerProcess } from "./worker";

/**
 * The one stack builder for suites and benchmarks: a fresh database and Redis prefix
 * (createTestEnv), an API (in-process or a process, see api.ts), optionally a model and
 * REAL worker processes, and tenant factories. Everything it started, `close()` stops:
 * workers first (SIGTERM, then SIGKILL), then every API, then the database and keys.
 */

/** The ADMIN_API_KEY every stack bootstraps. */
export const TEST_ADMIN_KEY = "test-admin-key-0123456789abcdef";

/** Where suites build their models: `<TEST_RUN_DIR>/models` (npm test removes the run directory). */
export function testModelDir(): string {
  return path.join(process.env.TEST_RUN_DIR ?? path.join(REPO_ROOT, "var", "test-models"), "models");
}

export type ServiceName = "postgres" | "redis";

export interface StackOptions<A extends ApiHandle> {
  /** how the API runs: `apiProcess()`, or the in-process launcher the suites bind (test/support/stack.ts) */
  api: ApiLauncher<A>;
  /** the database and Redis prefix to create (default: npm test's services, prefix "test") */
  env?: TestEnvOptions;
  /** runs on the fresh database before the API starts (e.g. seedModel) */
  prepare?: (env: TestEnv) => Promise<unknown>;
  /** a model to serve (DEFAULT_MODEL) and preload in workers; default none (MODEL_DIR is empty) */
  model?: string;
  /** the libs/model preset `model` is built from when absent; default the model's name; null: never build */
  modelPreset?: PresetName | null;
  /** default testModelDir() */
  modelDir?: string;
  /** variables over the API's defaults */
  apiEnv?: Record<string, string>;
  /** worker processes started with the stack (default 0) */
  workers?: number;
  /** default batch size of workers (default 8) */
  batchSize?: number;
  /** variables over every worker's defaults */
  workerEnv?: Record<string, string>;
  workerNodeArgs?: string[];
  /** how long a worker may take to log "worker ready", ms (default 30000) */
  workerReadyTimeoutMs?: number;
  /** rewrites the service URLs the API and workers use (fault tests route them through a proxy) */
  serviceUrl?: (service: ServiceName, url: string) => string;
}

export interface StackWorkerOptions {
  id?: string;
  batchSize?: number;
  env?: Record<string, string>;
}

export interface StackTenant extends TenantWithKey {
  /** a client authenticated with the tenant's key */
  http: GqlHttp;
}

export interface Stack<A extends ApiHandle = ApiHandle> {
  env: TestEnv;
  /** the first API */
  api: A;
  /** every API started (the first one included) */
  apis: A[];
  admin: GqlHttp;
  adminKey: string;
  modelDir: string;
  workers: WorkerProcess[];
  /** another API over the same services (variables over the defaults); closed with the stack */
  startApi(extraEnv?: Record<string, string>): Promise<A>;
  /** a worker process, resolved once ready */
  spawnWorker(opts?: StackWorkerOptions): Promise<WorkerProcess>;
  /** a tenant with a key, written to the database (`id` pins the tenant id) */
  tenant(opts?: CreateTenantOptions): Promise<StackTenant>;
  close(): Promise<void>;
}

export async function startStack<A extends ApiHandle>(opts: StackOptions<A>): Promise<Stack<A>> {
  const modelDir = opts.modelDir ?? testModelDir();
  if (opts.model && opts.modelPreset !== null) {
    // Loaded only here: suites without a model never load the ONNX runtime.
    const { ensureModel } = await import("@lite/model");
    await ensureModel({ modelDir, modelName: opts.model, preset: opts.modelPreset ?? (opts.model as PresetName) });
  }
  const env = await createTestEnv(opts.env);
  const via = opts.serviceUrl ?? ((_service: ServiceName, url: string) => url);
  const cluster: Record<string, string> =
    env.redisClusterNodes.length > 0 ? { REDIS_CLUSTER_NODES: env.redisClusterNodes.join(",") } : {};
  const apiEnv = {
    DATABASE_URL: via("postgres", env.databaseUrl),
    REDIS_URL: via("redis", env.redisUrl),
    ...cluster,
    REDIS_PREFIX: env.redisPrefix,
    MODEL_DIR: opts.model ? modelDir : path.join(process.env.TEST_RUN_DIR ?? os.tmpdir(), "no-models-here"),
    ...(opts.model ? { DEFAULT_MODEL: opts.model } : {}),
    ADMIN_API_KEY: TEST_ADMIN_KEY,
    LOG_LEVEL: process.env.API_LOG_LEVEL ?? process.env.LOG_LEVEL ?? "silent",
    ...opts.apiEnv,
  };
  const apis: A[] = [];
  const workers: WorkerProcess[] = [];
  const close = async () => {
    await Promise.allSettled(workers.map((w) => w.stop(10000)));
    if (testFailed()) printWorkerOutput(workers);
    await Promise.allSettled(apis.map((a) => a.close()));
    await env.close();
  };
  const stack: Omit<Stack<A>, "api"> & { api?: A } = {
    env,
    apis,
    admin: new GqlHttp("", TEST_ADMIN_KEY),
    adminKey: TEST_ADMIN_KEY,
    modelDir,
    workers,
    async startApi(extraEnv = {}) {
      const api = await opts.api({ ...apiEnv, ...extraEnv });
      apis.push(api);
      return api;
    },
    async spawnWorker(o = {}) {
      const w = spawnWorker({
        databaseUrl: via("postgres", env.databaseUrl),
        redisUrl: via("redis", env.redisUrl),
        redisPrefix: env.redisPrefix,
        modelDir,
        workerId: o.id,
        batchSize: o.batchSize ?? opts.batchSize ?? 8,
        nodeArgs: opts.workerNodeArgs,
        env: { ...cluster, ...(opts.model ? { WORKER_PRELOAD_MODELS: opts.model } : {}), ...opts.workerEnv, ...o.env },
        echo: process.env.E2E_ECHO === "1",
      });
      workers.push(w);
      await w.ready(opts.workerReadyTimeoutMs);
      return w;
    },
    async tenant(o = {}) {
      const t = await createTenant(env.db, o);
      return { ...t, http: new GqlHttp(stack.api!.url, t.secret) };
    },
    close,
  };
  try {
    await opts.prepare?.(env);
    stack.api = await stack.startApi();
    stack.admin = new GqlHttp(stack.api.url, TEST_ADMIN_KEY);
    await Promise.all(Array.from({ length: opts.workers ?? 0 }, () => stack.spawnWorker()));
  } catch (e) {
    await close().catch(() => undefined);
    throw e;
  }
  return stack as Stack<A>;
}

/** Whether a test or hook of this file has failed (set by the jest environment, jest.config.js). */
function testFailed(): boolean {
  return (globalThis as { __liteTestFailed?: boolean }).__liteTestFailed === true;
}

/** Each worker's last lines, to stderr: after a failure they are the only record of what it did. */
function printWorkerOutput(workers: WorkerProcess[]): void {
  for (const w of workers) {
    process.stderr.write(`\n----- worker ${w.id} (pid ${w.pid}), last lines -----\n${w.output()}\n`);
  }
}
