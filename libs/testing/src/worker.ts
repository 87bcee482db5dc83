import { spawn, type ChildProcess } from "node:child_process";
import { WORKER_NODE_FLAGS } from "@lite/config";
import {
  captureLines,
  childEnv,
  EXIT_WITH_PARENT,
  exitOf,
  exitWithParentEnv,
  REPO_ROOT,
  stopChild,
} from "./child-process";

/**
 * Spawns REAL worker processes (`node -r ./scripts/register.js apps/worker/src/main.ts`)
 * for integration tests and benchmarks, configured only through the environment as an
 * operator would.
 */

export interface WorkerProcessOptions {
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  modelDir: string;
  workerId?: string;
  batchSize?: number;
  /** any further variables (LOG_LEVEL, WORKER_LOCK_MS, WORKER_METRICS_PORT, …); undefined removes one */
  env?: Record<string, string | undefined>;
  /** keep the last lines of output for failure messages (default 200) */
  keepLines?: number;
  /** echo the worker's output to this process' stderr */
  echo?: boolean;
  /** extra node arguments (e.g. --cpu-prof while investigating) */
  nodeArgs?: string[];
}

export interface WorkerProcess {
  readonly id: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** resolves once the worker logged that it is ready to take jobs */
  ready(timeoutMs?: number): Promise<void>;
  /** resolves with the exit code (or the signal name) */
  readonly exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, wait for exit (SIGKILL after timeoutMs) */
  stop(timeoutMs?: number): Promise<number | string>;
  output(): string;
}

let counter = 0;

/** A worker's /metrics text, read with an ADMIN key (the worker refuses anything else). */
export async function scrapeWorkerMetrics(url: string, adminKey: string): Promise<string> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${adminKey}` } });
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${await res.text()}`);
  return res.text();
}

export function spawnWorker(opts: WorkerProcessOptions): WorkerProcess {
  const id = opts.workerId ?? `test-worker-${process.pid}-${++counter}`;
  const env = childEnv({
    DATABASE_URL: opts.databaseUrl,
    REDIS_URL: opts.redisUrl,
    REDIS_PREFIX: opts.redisPrefix,
    MODEL_DIR: opts.modelDir,
    WORKER_ID: id,
    // Readiness is read from the "worker ready" line: info or more verbose.
    LOG_LEVEL: process.env.WORKER_LOG_LEVEL ?? "info",
    // Any free port (logged in "worker ready"): the default 9464 would be shared by every worker.
    WORKER_METRICS_PORT: "0",
    ...exitWithParentEnv(),
    ...(opts.batchSize !== undefined ? { WORKER_BATCH_SIZE: String(opts.batchSize) } : {}),
    ...opts.env,
  });
  const child = spawn(
    process.execPath,
    [
      ...EXIT_WITH_PARENT,
      ...WORKER_NODE_FLAGS,
      ...(opts.nodeArgs ?? []),
      "-r",
      "./scripts/register.js",
      "apps/worker/src/main.ts",
    ],
    { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let markReady: (() => void) | undefined;
  const readyPromise = new Promise<void>((resolve) => (markReady = resolve));
  const output = captureLines(child, {
    keep: opts.keepLines ?? 200,
    echo: opts.echo,
    onLine: (line) => {
      if (line.includes('"msg":"worker ready"')) markReady?.();
    },
  });
  const exited = exitOf(child);
  return {
    id,
    pid: child.pid!,
    child,
    exited,
    async ready(timeoutMs = 30000) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          readyPromise,
          exited.then((c) => {
            throw new Error(`worker ${id} exited (${c}) before ready:\n${output()}`);
          }),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`worker ${id} not ready within ${timeoutMs} ms:\n${output()}`)),
              timeoutMs,
            );
          }),
        ]);
      } finally {
        if (timer) clearTimeout(timer);
      }
    },
    kill(signal: NodeJS.Signals = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    stop: (timeoutMs = 15000) => stopChild(child, exited, timeoutMs),
    output,
  };
}
