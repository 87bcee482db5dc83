/**
 * Brings up PostgreSQL and Redis for `npm start` and `npm test` (RUNTIME.md "Services").
 *
 * 1. DATABASE_URL set → use it. Unset → start an embedded PostgreSQL (./embedded-postgres.ts)
 *    on a free loopback port, data under `<dataDir>/postgres` (as root, where the
 *    `postgres` user can reach it: a symlink there then leads to the data).
 * 2. REDIS_URL set → use it. Unset with REDIS_CLUSTER_NODES set → `redis://<first node>` (the
 *    children read REDIS_CLUSTER_NODES themselves and run on the cluster). Both unset → start the machine's `redis-server` on a free
 *    loopback port, data under `<dataDir>/redis`; install Debian's package first when
 *    missing and running as root; otherwise stop with one line saying what to do.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { Client } from "pg";
import { ServiceSetupError, startEmbeddedPostgres } from "./embedded-postgres";

export interface Services {
  databaseUrl: string;
  redisUrl: string;
  embeddedPostgres: boolean;
  embeddedRedis: boolean;
  stop(): Promise<void>;
}

export interface ServiceOptions {
  /** where embedded services keep their data (persistent for start, throw-away for test) */
  dataDir: string;
  /** keep data between runs (npm start) or not (npm test) */
  persistent: boolean;
  log?: (line: string) => void;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

async function startPostgres(opts: ServiceOptions): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const password = "postgres";
  const pg = await startEmbeddedPostgres({
    dataDir: path.resolve(opts.dataDir, "postgres"),
    port,
    password,
    persistent: opts.persistent,
    flags: ["-c", "max_connections=300", "-c", "fsync=" + (opts.persistent ? "on" : "off")],
    log: opts.log ?? (() => undefined),
  });
  try {
    const url = `postgresql://postgres:${password}@127.0.0.1:${port}`;
    const client = new Client({ connectionString: `${url}/postgres` });
    await client.connect();
    try {
      const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = 'lite'");
      if (exists.rowCount === 0) await client.query("CREATE DATABASE lite");
    } finally {
      await client.end();
    }
    return { url: `${url}/lite`, stop: () => pg.stop() };
  } catch (e) {
    await pg.stop();
    throw e;
  }
}

function findRedisServer(): string | undefined {
  const found = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" });
  const p = found.stdout.trim();
  return found.status === 0 && p ? p : undefined;
}

function ensureRedisInstalled(log: (l: string) => void): string {
  const existing = findRedisServer();
  if (existing) return existing;
  if (process.getuid?.() !== 0) {
    throw new ServiceSetupError(
      "redis-server is not installed: run `sudo apt-get install -y redis-server`, or set REDIS_URL to a running Redis",
    );
  }
  log("installing Debian's redis-server (REDIS_URL is unset and redis-server is missing)");
  execFileSync("apt-get", ["update", "-qq"], { stdio: "ignore" });
  execFileSync("apt-get", ["install", "-y", "-qq", "redis-server"], {
    stdio: "ignore",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  const installed = findRedisServer();
  if (!installed) throw new ServiceSetupError("installing redis-server failed: install it by hand or set REDIS_URL");
  return installed;
}

async function waitForPort(
  port: number,
  child: ChildProcess,
  spawnError: () => Error | null,
  timeoutMs = 10000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const failed = spawnError();
    if (failed) throw new ServiceSetupError(`redis-server could not start (${failed.message}): set REDIS_URL`);
    if (child.exitCode !== null) throw new ServiceSetupError(`redis-server exited with code ${child.exitCode}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => {
        s.end();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new ServiceSetupError(`redis-server did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

async function startRedis(opts: ServiceOptions): Promise<{ url: string; stop: () => Promise<void> }> {
  const bin = ensureRedisInstalled(opts.log ?? (() => undefined));
  const dir = path.resolve(opts.dataDir, "redis");
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--daemonize", "no", "--logfile", ""];
  if (opts.persistent) args.push("--appendonly", "yes", "--save", "60 1");
  else args.push("--appendonly", "no", "--save", "");
  const child = spawn(bin, args, { stdio: "ignore" });
  let spawnError: Error | null = null;
  child.on("error", (e) => (spawnError = e)); // unhandled, it would end the process with a stack trace
  await waitForPort(port, child, () => spawnError);
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      });
    },
  };
}

export { ServiceSetupError };

/** `redis://<first node>` of a REDIS_CLUSTER_NODES list, or undefined when it is unset or empty. */
function clusterSeedUrl(nodes: string | undefined): string | undefined {
  const first = nodes
    ?.split(",")
    .map((n) => n.trim())
    .find(Boolean);
  return first ? `redis://${first}` : undefined;
}

export async function bringUpServices(env: NodeJS.ProcessEnv, opts: ServiceOptions): Promise<Services> {
  const stops: Array<() => Promise<void>> = [];
  try {
    let databaseUrl = env.DATABASE_URL;
    let redisUrl = env.REDIS_URL || clusterSeedUrl(env.REDIS_CLUSTER_NODES);
    const embeddedPostgres = !databaseUrl;
    const embeddedRedis = !redisUrl;
    if (!databaseUrl) {
      const pg = await startPostgres(opts);
      stops.push(pg.stop);
      databaseUrl = pg.url;
    }
    if (!redisUrl) {
      const redis = await startRedis(opts);
      stops.push(redis.stop);
      redisUrl = redis.url;
    }
    return {
      databaseUrl,
      redisUrl,
      embeddedPostgres,
      embeddedRedis,
      stop: async () => {
        for (const s of stops.reverse()) await s().catch(() => undefined);
      },
    };
  } catch (e) {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    throw e;
  }
}
