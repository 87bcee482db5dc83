import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";

/**
 * Spawns REAL worker processes (`node -r ./scripts/register.js apps/worker/src/main.ts`)
 * for integration tests and benchmarks, configured only through the environment as an
 * operator would.
 */

const root = path.resolve(__dirname, "..", "..", "..");

export interface WorkerProcessOptions {
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  modelDir: string;
  workerId?: string;
  batchSize?: number;
  /** any further variables (LOG_LEVEL, WORKER_LOCK_MS, WORKER_METRICS_PORT, …) */
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

export function spawnWorker(opts: WorkerProcessOptions): WorkerProcess {
  const id = opts.workerId ?? `test-worker-${process.pid}-${++counter}`;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  Object.assign(env, {
    DATABASE_URL: opts.databaseUrl,
    REDIS_URL: opts.redisUrl,
    REDIS_PREFIX: opts.redisPrefix,
    MODEL_DIR: opts.modelDir,
    WORKER_ID: id,
    LOG_LEVEL: process.env.WORKER_LOG_LEVEL ?? "info",
  });
  if (opts.batchSize !== undefined) env.WORKER_BATCH_SIZE = String(opts.batchSize);
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const child = spawn(
    process.execPath,
    [...(opts.nodeArgs ?? []), "-r", "./scripts/register.js", "apps/worker/src/main.ts"],
    {
      cwd: root,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const keep = opts.keepLines ?? 200;
  const lines: string[] = [];
  let readyResolve: (() => void) | undefined;
  let isReady = false;
  const readyPromise = new Promise<void>((resolve) => {
    readyResolve = resolve;
  });
  const onData = (chunk: Buffer) => {
    const text = chunk.toString("utf8");
    if (opts.echo) process.stderr.write(text);
    for (const line of text.split("\n")) {
      if (!line) continue;
      lines.push(line);
      if (lines.length > keep) lines.shift();
      if (!isReady && line.includes('"msg":"worker ready"')) {
        isReady = true;
        readyResolve?.();
      }
    }
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? -1));
  });
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
            throw new Error(`worker ${id} exited (${c}) before ready:\n${lines.join("\n")}`);
          }),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`worker ${id} not ready within ${timeoutMs} ms:\n${lines.join("\n")}`)),
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
    async stop(timeoutMs = 15000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
    output: () => lines.join("\n"),
  };
}
