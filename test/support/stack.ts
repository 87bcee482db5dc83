import { Admission } from "@lite/scheduler";
import { startStack as startHarnessStack, type ApiLauncher, type Stack, type StackOptions } from "@lite/testing";
import { startApiServer, type RunningApiServer } from "../../apps/api/src/server";

/**
 * The suites' binding of the one stack builder (@lite/testing startStack) to the API
 * server in this process: a library cannot import an app, so the launcher lives here.
 * In-process, a test reaches the server's services (e.g. `api.services.auditWriter`).
 * Many short-lived servers share the test PostgreSQL: their pools open connections on
 * demand and keep none open (DATABASE_POOL_OPEN=0) unless a test asks.
 */
export const inProcessApi: ApiLauncher<RunningApiServer> = (env) =>
  startApiServer({ port: 0, host: "127.0.0.1", env: { DATABASE_POOL_OPEN: "0", ...env } });

export type TestStack = Stack<RunningApiServer> & {
  /**
   * reads admission counters directly (not through the proxy of a fault test); built here,
   * not in @lite/testing, whose package the scheduler's own tests use
   */
  admission: Admission;
};

/** An in-process API over a fresh database and Redis prefix; workers and a model on request. */
export async function startStack(opts: Omit<StackOptions<RunningApiServer>, "api"> = {}): Promise<TestStack> {
  const stack = await startHarnessStack({ api: inProcessApi, ...opts });
  const { redis, keys } = stack.env;
  return Object.assign(stack, { admission: new Admission({ redis, keys, maxQueuedTokens: 1e9 }) });
}

/**
 * Workers of the end-to-end suites: locks and stall checks are short so crash recovery is
 * quick; a stopping worker leaves what it holds after 5 s.
 */
export const E2E_WORKER_ENV = {
  WORKER_LOCK_MS: "1500",
  WORKER_STALLED_INTERVAL_MS: "500",
  WORKER_SHUTDOWN_GRACE_MS: "5000",
};

/** The end-to-end stack: the tiny model served and preloaded, E2E_WORKER_ENV under `workerEnv`. */
export function startE2eStack(opts: Omit<StackOptions<RunningApiServer>, "api"> = {}): Promise<TestStack> {
  return startStack({ model: "tiny", ...opts, workerEnv: { ...E2E_WORKER_ENV, ...opts.workerEnv } });
}
