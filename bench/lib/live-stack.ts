/**
 * A whole running deployment for the end-to-end benchmarks (fairness, isolation,
 * overhead): services brought up the way `npm test` does (scripts/services.ts; embedded
 * PostgreSQL and a local redis-server unless DATABASE_URL / REDIS_URL are set), a migrated
 * template database, and per phase a stack of the one test harness (@lite/testing
 * startStack: a fresh database + Redis prefix, the API as a process, worker processes) —
 * so a fair phase and its FIFO baseline never share state.
 */
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  adminQuery,
  apiProcess,
  scrapeWorkerMetrics,
  startStack,
  TEST_ADMIN_KEY,
  withDatabase,
  type ApiProcess,
  type GqlHttp,
  type WorkerProcess,
} from "@lite/testing";
import { parseTenantCounter } from "@lite/telemetry";
import { bringUpServices, type Services } from "../../scripts/services";
import { migrateDeploy } from "../../scripts/migrate";
import type { BenchContext } from "./bench-types";

/**
 * Every API and worker process a phase started, and the services' stop: a bench that fails
 * stops them in its `finally`; one interrupted (SIGINT, SIGTERM, SIGHUP) or exiting early
 * SIGKILLs the children still running (at once, synchronously), then stops the services
 * (bounded) and exits, so no worker outlives its bench. (SIGKILL of the bench itself cannot be
 * caught: its children then keep running.)
 */
const children = new Set<ChildProcess>();
const onInterrupt = new Set<() => Promise<void>>();
let guarded = false;

function track(child: ChildProcess): void {
  children.add(child);
  child.once("exit", () => children.delete(child));
  if (guarded) return;
  guarded = true;
  const killAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  };
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
    process.once(signal, () => {
      process.stderr.write(`bench: ${signal}: killing ${children.size} child process(es), stopping services\n`);
      killAll();
      const stops = Promise.allSettled([...onInterrupt].map((stop) => stop()));
      void Promise.race([stops, sleep(15000)]).finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
    });
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
  await adminQuery(services.databaseUrl, `CREATE DATABASE "${template}"`);
  migrateDeploy(withDatabase(services.databaseUrl, template));
  const stopOnInterrupt = () => services.stop();
  onInterrupt.add(stopOnInterrupt);
  return {
    services,
    template,
    runDir,
    async stop() {
      onInterrupt.delete(stopOnInterrupt);
      await adminQuery(services.databaseUrl, `DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`).catch(
        () => undefined,
      );
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
  /** the API process' id (its CPU time, for reports) */
  apiPid: number | undefined;
  workers: WorkerProcess[];
  metricsUrls: string[];
  /** per-tenant tokens generated, summed over workers (lite_tokens_generated_total) */
  tokensByTenant(): Promise<Map<string, number>>;
  /** per-tenant counters of the workers' /metrics, in the order named (summed over workers and other labels; one scrape per worker) */
  countersByTenant(names: readonly string[]): Promise<Map<string, number>[]>;
  /**
   * `id` pins the tenant id (a `ten_` id): routing seeds derive from it, so phases meant to
   * run the same work (a baseline and its comparison) pin the same ids
   */
  createTenant(name: string, weight: number, id?: string): Promise<{ id: string; key: string; http: GqlHttp }>;
  /** one more worker process of this phase (ready when it resolves) */
  spawnWorker(id: string): Promise<WorkerProcess>;
  stop(): Promise<void>;
}

/** Quota of every benchmark tenant: far above what a phase generates, so only fairness shapes service. */
const BENCH_QUOTA = {
  maxConcurrentRequests: 100000,
  requestsPerMinute: 1000000,
  maxOutstandingTokens: 1000000000,
  tokensPerMinute: 1000000000,
};

/** BENCH_API_NODE_ARGS / BENCH_WORKER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"), for any benchmark. */
function nodeArgsFromEnv(name: string): string[] | undefined {
  const args = process.env[name]?.split(" ").filter(Boolean);
  return args && args.length > 0 ? args : undefined;
}

/**
 * The API and worker processes of the phases not yet stopped. If this process ends first
 * (a bench that threw past its phase's stop, Ctrl-C, SIGTERM), they are SIGKILLed on its
 * way out; and each of them exits by itself within a second of this process' death, even a
 * SIGKILL (@lite/testing preloads exit-with-parent.js): an aborted run leaves no orphans.
 */
const livePhases = new Set<{ api: { kill(signal?: NodeJS.Signals): void }; workers: WorkerProcess[] }>();
let reaping = false;

function killLivePhases(): void {
  for (const p of livePhases) {
    for (const w of p.workers) w.kill("SIGKILL");
    p.api.kill("SIGKILL");
  }
  livePhases.clear();
}

function reapOnExit(): void {
  if (reaping) return;
  reaping = true;
  process.once("exit", killLivePhases);
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ] as const)
    process.once(signal, () => {
      process.stderr.write(`bench: ${signal}: killing the phase's API and worker processes\n`);
      killLivePhases();
      process.exit(code);
    });
}

export async function startPhase(ctx: BenchContext, live: LiveServices, phaseOpts: PhaseOptions): Promise<Phase> {
  reapOnExit();
  const opts = {
    ...phaseOpts,
    apiNodeArgs: phaseOpts.apiNodeArgs ?? nodeArgsFromEnv("BENCH_API_NODE_ARGS"),
    workerNodeArgs: phaseOpts.workerNodeArgs ?? nodeArgsFromEnv("BENCH_WORKER_NODE_ARGS"),
  };
  const stack = await startStack<ApiProcess>({
    api: apiProcess({ nodeArgs: opts.apiNodeArgs }),
    env: {
      databaseUrl: live.services.databaseUrl,
      redisUrl: live.services.redisUrl,
      template: live.template,
      prefix: "bench",
    },
    model: opts.model,
    modelPreset: null, // each benchmark builds its model before its phases
    modelDir: ctx.modelDir,
    apiEnv: {
      SCHEDULER_MODE: opts.mode,
      MAX_QUEUED_TOKENS: String(1e12),
      LOG_LEVEL: "warn",
      NODE_ENV: "production",
      ...opts.apiEnv,
    },
    workers: opts.workers,
    batchSize: opts.batchSize,
    workerEnv: { SCHEDULER_MODE: opts.mode, WORKER_METRICS_PORT: "0", LOG_LEVEL: "info", ...opts.workerEnv },
    workerNodeArgs: opts.workerNodeArgs,
    workerReadyTimeoutMs: 60000,
  });
  const workers = stack.workers;
  const processes = { api: stack.api, workers };
  livePhases.add(processes);
  track(stack.api.child);
  for (const w of workers) track(w.child);
  const metricsUrls = workers.map((w) => `http://127.0.0.1:${/"metricsPort":(\d+)/.exec(w.output())?.[1]}/metrics`);
  const suffix = stack.env.redisPrefix.slice("bench-".length);
  const countersByTenant = async (names: readonly string[]) => {
    const totals = names.map(() => new Map<string, number>());
    for (const m of metricsUrls) {
      const text = await scrapeWorkerMetrics(m, TEST_ADMIN_KEY);
      names.forEach((name, i) => {
        for (const [t, n] of parseTenantCounter(text, name)) totals[i].set(t, (totals[i].get(t) ?? 0) + n);
      });
    }
    return totals;
  };
  return {
    url: stack.api.url,
    admin: stack.admin,
    apiPid: stack.api.child.pid,
    workers,
    metricsUrls,
    tokensByTenant: async () => (await countersByTenant(["lite_tokens_generated_total"]))[0],
    countersByTenant,
    async createTenant(name, weight, id) {
      const t = await stack.tenant({ name: `${name}-${suffix}`, weight, quota: BENCH_QUOTA, id });
      return { id: t.tenantId, key: t.secret, http: t.http };
    },
    async spawnWorker(id) {
      const spawned = stack.spawnWorker({ id }); // joins `workers` (the stack's own list)
      track(workers[workers.length - 1].child);
      return spawned;
    },
    async stop() {
      // Workers first (a baseline's backlog is thrown away with its database): SIGTERM with
      // no grace when profiling (so the profile is written), else SIGKILL.
      for (const w of workers) w.kill(opts.workerNodeArgs?.length ? "SIGTERM" : "SIGKILL");
      await Promise.all(workers.map((w) => w.exited));
      await stack.close();
      livePhases.delete(processes);
    },
  };
}

/** Sorted-sample percentile (nearest rank): stats.ts, re-exported for the benches that import it from here. */
export { percentile } from "./stats";

/** Jain's fairness index of x (1 = perfectly fair). */
export function jain(x: number[]): number {
  const sum = x.reduce((a, b) => a + b, 0);
  const sq = x.reduce((a, b) => a + b * b, 0);
  return (sum * sum) / (x.length * sq);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
