/**
 * A whole running deployment for the end-to-end benchmarks (fairness, isolation,
 * overhead): services brought up the way `npm test` does (scripts/services.ts; embedded
 * PostgreSQL and a local redis-server unless DATABASE_URL / REDIS_URL are set), a migrated
 * template database, and per phase a fresh database + Redis prefix with its own API
 * process and worker processes — so a fair phase and its FIFO baseline never share state.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import pg from "pg";
import { randomBytes } from "node:crypto";
import { bringUpServices, freePort, type Services } from "../../scripts/services";
import { migrateDeploy } from "../../scripts/migrate";
import { GqlHttp } from "../../libs/testing/src/gql-client";
import { spawnWorker, type WorkerProcess } from "../../libs/testing/src/worker";
import { parseTenantCounter } from "../../libs/telemetry/src/tenant-metrics";
import type { BenchContext } from "./bench-types";

const ADMIN_KEY = "bench-admin-key-0123456789";

async function admin(url: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

function withDb(base: string, db: string): string {
  const u = new URL(base);
  u.pathname = `/${db}`;
  return u.toString();
}

export interface LiveServices {
  services: Services;
  template: string;
  runDir: string;
  stop(): Promise<void>;
}

export async function bringUpLiveServices(ctx: BenchContext): Promise<LiveServices> {
  const runDir = path.join(ctx.rootDir, "var", `bench-run-${process.pid}`);
  fs.mkdirSync(runDir, { recursive: true });
  const services = await bringUpServices(process.env, { dataDir: runDir, persistent: false, log: ctx.log });
  const template = `lite_bench_tpl_${process.pid}_${Date.now().toString(36)}`;
  await admin(services.databaseUrl, `CREATE DATABASE "${template}"`);
  migrateDeploy(withDb(services.databaseUrl, template));
  return {
    services,
    template,
    runDir,
    async stop() {
      await admin(services.databaseUrl, `DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`).catch(() => undefined);
      await services.stop();
      fs.rmSync(runDir, { recursive: true, force: true });
    },
  };
}

export interface PhaseOptions {
  mode: "fair" | "fifo";
  workers: number;
  batchSize: number;
  model: string;
  workerEnv?: Record<string, string>;
  apiEnv?: Record<string, string>;
  /** extra node arguments for the API process (e.g. --cpu-prof while investigating) */
  apiNodeArgs?: string[];
  /** extra node arguments for the worker processes */
  workerNodeArgs?: string[];
}

export interface Phase {
  url: string;
  admin: GqlHttp;
  workers: WorkerProcess[];
  metricsUrls: string[];
  /** per-tenant tokens generated, summed over workers (lite_tokens_generated_total) */
  tokensByTenant(): Promise<Map<string, number>>;
  createTenant(name: string, weight: number): Promise<{ id: string; key: string; http: GqlHttp }>;
  stop(): Promise<void>;
}

export async function startPhase(ctx: BenchContext, live: LiveServices, opts: PhaseOptions): Promise<Phase> {
  const suffix = randomBytes(4).toString("hex");
  const database = `lite_bench_${suffix}`;
  await admin(live.services.databaseUrl, `CREATE DATABASE "${database}" TEMPLATE "${live.template}"`);
  const databaseUrl = withDb(live.services.databaseUrl, database);
  const redisPrefix = `bench-${suffix}`;
  const port = await freePort();
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  Object.assign(env, {
    PORT: String(port),
    HOST: "127.0.0.1",
    DATABASE_URL: databaseUrl,
    REDIS_URL: live.services.redisUrl,
    REDIS_PREFIX: redisPrefix,
    MODEL_DIR: ctx.modelDir,
    DEFAULT_MODEL: opts.model,
    ADMIN_API_KEY: ADMIN_KEY,
    SCHEDULER_MODE: opts.mode,
    MAX_QUEUED_TOKENS: String(1e12),
    LOG_LEVEL: "warn",
    NODE_ENV: "production",
    ...opts.apiEnv,
  });
  const api: ChildProcess = spawn(
    process.execPath,
    [...(opts.apiNodeArgs ?? []), "-r", "./scripts/register.js", "apps/api/src/main.ts"],
    {
      cwd: ctx.rootDir,
      env,
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let apiErr = "";
  api.stderr!.on("data", (d: Buffer) => (apiErr = (apiErr + d.toString()).slice(-4000)));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60000;
  for (;;) {
    if (api.exitCode !== null) throw new Error(`API exited: ${apiErr}`);
    const ok = await fetch(`${base}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`API not ready in 60 s: ${apiErr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const workers: WorkerProcess[] = [];
  for (let i = 0; i < opts.workers; i++) {
    const w = spawnWorker({
      databaseUrl,
      redisUrl: live.services.redisUrl,
      redisPrefix,
      modelDir: ctx.modelDir,
      workerId: `bench-${opts.mode}-${i}`,
      batchSize: opts.batchSize,
      nodeArgs: opts.workerNodeArgs,
      env: {
        SCHEDULER_MODE: opts.mode,
        WORKER_METRICS_PORT: "0",
        WORKER_PRELOAD_MODELS: opts.model,
        LOG_LEVEL: "info",
        ...opts.workerEnv,
      },
    });
    workers.push(w);
  }
  await Promise.all(workers.map((w) => w.ready(60000)));
  const metricsUrls = workers.map((w) => `http://127.0.0.1:${/"metricsPort":(\d+)/.exec(w.output())?.[1]}/metrics`);
  const url = `${base}/graphql`;
  const adminHttp = new GqlHttp(url, ADMIN_KEY);
  return {
    url,
    admin: adminHttp,
    workers,
    metricsUrls,
    async tokensByTenant() {
      const total = new Map<string, number>();
      for (const m of metricsUrls) {
        const text = await (await fetch(m)).text();
        for (const [t, n] of parseTenantCounter(text, "lite_tokens_generated_total"))
          total.set(t, (total.get(t) ?? 0) + n);
      }
      return total;
    },
    async createTenant(name, weight) {
      const d = await adminHttp.ok<{ createTenant: { tenant: { id: string }; apiKey: { secret: string } } }>(
        `mutation($input: CreateTenantInput!) { createTenant(input: $input) { tenant { id } apiKey { secret } } }`,
        {
          input: {
            name: `${name}-${suffix}`,
            weight,
            quota: {
              maxConcurrentRequests: 100000,
              requestsPerMinute: 1000000,
              maxOutstandingTokens: 1000000000,
              tokensPerMinute: 1000000000,
            },
          },
        },
      );
      return {
        id: d.createTenant.tenant.id,
        key: d.createTenant.apiKey.secret,
        http: new GqlHttp(url, d.createTenant.apiKey.secret),
      };
    },
    async stop() {
      // Workers first (a baseline's backlog is thrown away with its database): SIGTERM with
      // no grace when profiling (so the profile is written), else SIGKILL.
      for (const w of workers) w.kill(opts.workerNodeArgs?.length ? "SIGTERM" : "SIGKILL");
      await Promise.all(workers.map((w) => w.exited));
      api.kill("SIGTERM");
      const t = setTimeout(() => api.kill("SIGKILL"), 10000);
      await new Promise((r) => api.once("exit", r));
      clearTimeout(t);
      await admin(live.services.databaseUrl, `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`).catch(
        () => undefined,
      );
    },
  };
}

/** Sorted-sample percentile (nearest rank). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Jain's fairness index of x (1 = perfectly fair). */
export function jain(x: number[]): number {
  const sum = x.reduce((a, b) => a + b, 0);
  const sq = x.reduce((a, b) => a + b * b, 0);
  return (sum * sum) / (x.length * sq);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
