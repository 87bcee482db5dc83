import { spawn, type ChildProcess } from "node:child_process";
import {
  captureLines,
  childEnv,
  EXIT_WITH_PARENT,
  exitOf,
  exitWithParentEnv,
  freePort,
  REPO_ROOT,
  stopChild,
} from "./child-process";

/**
 * How a stack runs its API. A library cannot import an app, so the in-process server
 * (`startApiServer` of apps/api) is bound by the suites (test/support/stack.ts); this file
 * runs the API as a process (`apps/api/src/main.ts`), as an operator would — the benchmarks
 * and the process-level tests use that.
 */
export interface ApiHandle {
  /** http://host:port/graphql */
  readonly url: string;
  /** ws://host:port/graphql */
  readonly wsUrl: string;
  /** http://host:port */
  readonly baseUrl: string;
  /** drains and stops; idempotent */
  close(): Promise<void>;
}

/** Starts one API over these variables (DATABASE_URL, REDIS_URL, REDIS_PREFIX, MODEL_DIR, ADMIN_API_KEY, …). */
export type ApiLauncher<A extends ApiHandle = ApiHandle> = (env: Record<string, string>) => Promise<A>;

export interface ApiProcess extends ApiHandle {
  readonly port: number;
  readonly child: ChildProcess;
  /** resolves with the exit code (or the signal name) */
  readonly exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM (the API drains), SIGKILL after timeoutMs (default 10000) */
  stop(timeoutMs?: number): Promise<number | string>;
  output(): string;
}

export interface ApiProcessOptions {
  /** variables over process.env; PORT defaults to a free port, HOST to 127.0.0.1 */
  env: Record<string, string | undefined>;
  /** extra node arguments (e.g. --cpu-prof while investigating) */
  nodeArgs?: string[];
  /** how long /readyz may take to answer 200, ms (default 60000) */
  readyTimeoutMs?: number;
  /** lines of output kept for failure messages (default 200) */
  keepLines?: number;
}

/** Spawns the API and resolves once /readyz answers 200 (rejects with its output if it exits first). */
export async function startApiProcess(opts: ApiProcessOptions): Promise<ApiProcess> {
  const port = opts.env.PORT ? Number(opts.env.PORT) : await freePort();
  const env = childEnv({ HOST: "127.0.0.1", ...exitWithParentEnv(), ...opts.env, PORT: String(port) });
  const child = spawn(
    process.execPath,
    [...EXIT_WITH_PARENT, ...(opts.nodeArgs ?? []), "-r", "./scripts/register.js", "apps/api/src/main.ts"],
    {
      cwd: REPO_ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const output = captureLines(child, { keep: opts.keepLines ?? 200 });
  const exited = exitOf(child);
  const baseUrl = `http://127.0.0.1:${port}`;
  const api: ApiProcess = {
    port,
    url: `${baseUrl}/graphql`,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    baseUrl,
    child,
    exited,
    kill(signal: NodeJS.Signals = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    stop: (timeoutMs = 10000) => stopChild(child, exited, timeoutMs),
    async close() {
      await api.stop();
    },
    output,
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`API exited (${await exited}) before ready:\n${output()}`);
    }
    const ready = await fetch(`${baseUrl}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) return api;
    if (Date.now() > deadline) {
      await api.stop();
      throw new Error(`API not ready within ${opts.readyTimeoutMs ?? 60000} ms:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** An ApiLauncher running the API as a process. */
export function apiProcess(opts: Omit<ApiProcessOptions, "env"> = {}): ApiLauncher<ApiProcess> {
  return (env) => startApiProcess({ ...opts, env });
}
