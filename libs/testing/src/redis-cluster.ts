import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import * as path from "node:path";
import { Redis } from "@lite/redis";
import { captureLines, exitOf, stopChild } from "./child-process";

/**
 * A throwaway Redis Cluster for tests: `masters` redis-server processes of this machine
 * (no replicas) on free loopback ports, each with its own temp directory and no
 * persistence, the 16384 slots split evenly (CLUSTER ADDSLOTSRANGE), joined with
 * CLUSTER MEET; resolved once every node reports `cluster_state:ok` and sees every other.
 * `stop()` terminates the processes it started and removes the directories.
 */
export interface RedisClusterOptions {
  /** masters to start (default 3) */
  masters?: number;
  /** the redis-server binary (default: REDIS_SERVER_BIN, else `redis-server` found on PATH) */
  serverBin?: string;
  /** how long the cluster may take to form, ms (default 15000) */
  readyTimeoutMs?: number;
}

export interface RedisCluster {
  /** `127.0.0.1:<port>` of every master: REDIS_CLUSTER_NODES */
  nodes: string[];
  /** `redis://127.0.0.1:<port>` of the first master: REDIS_URL in cluster mode */
  url: string;
  stop(): Promise<void>;
}

const SLOTS = 16384;

/** The redis-server binary on this machine, or null (suites skip with a message then). */
export function findRedisServer(bin = process.env.REDIS_SERVER_BIN): string | null {
  if (bin) return isExecutable(bin) ? bin : null;
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const candidate = path.join(dir, "redis-server");
    if (dir && isExecutable(candidate)) return candidate;
  }
  return null;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisCluster> {
  const bin = opts.serverBin ?? findRedisServer();
  if (!bin) throw new Error("redis-server not found (set REDIS_SERVER_BIN or put it on PATH)");
  const masters = opts.masters ?? 3;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "lite-redis-cluster-"));
  const procs: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(procs.map((p) => stopChild(p, exitOf(p), 5000)));
    fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    const ports = await clusterPorts(masters);
    for (const port of ports) procs.push(await startNode(bin, port, path.join(root, String(port))));
    await formCluster(ports, opts.readyTimeoutMs ?? 15000);
    const nodes = ports.map((p) => `127.0.0.1:${p}`);
    return { nodes, url: `redis://${nodes[0]}`, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Free ports whose cluster bus port (port + 10000) is free too. */
async function clusterPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = 20000 + Math.floor(Math.random() * 25000);
    if (ports.includes(port)) continue;
    if ((await isFree(port)) && (await isFree(port + 10000))) ports.push(port);
  }
  return ports;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

async function startNode(bin: string, port: number, dir: string): Promise<ChildProcess> {
  fs.mkdirSync(dir, { recursive: true });
  // An array of arguments, no shell; `save ""` and no AOF: nothing is written but nodes.conf.
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--cluster-enabled", "yes"];
  args.push("--cluster-config-file", "nodes.conf", "--save", "", "--appendonly", "no", "--protected-mode", "no");
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  const output = captureLines(child, { keep: 20 });
  const exited = exitOf(child).then((code) => {
    throw new Error(`redis-server on port ${port} exited (${code}):\n${output()}`);
  });
  exited.catch(() => undefined);
  await Promise.race([untilPong(port), exited]);
  return child;
}

async function untilPong(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const c = admin(port);
    try {
      if ((await c.ping()) === "PONG") return;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    } finally {
      c.disconnect();
    }
  }
  throw new Error(`redis-server on port ${port} never answered PING`);
}

function admin(port: number): Redis {
  const c = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on("error", () => undefined); // refused while the server starts: untilPong retries
  return c;
}

async function formCluster(ports: number[], timeoutMs: number): Promise<void> {
  const clients = ports.map(admin);
  try {
    const per = Math.floor(SLOTS / ports.length);
    await Promise.all(
      clients.map((c, i) => {
        const last = i === ports.length - 1 ? SLOTS - 1 : (i + 1) * per - 1;
        return c.call("CLUSTER", "ADDSLOTSRANGE", String(i * per), String(last));
      }),
    );
    for (const port of ports.slice(1)) await clients[0].call("CLUSTER", "MEET", "127.0.0.1", String(port));
    const deadline = Date.now() + timeoutMs;
    while (!(await formed(clients, ports.length))) {
      if (Date.now() > deadline) throw new Error(`the cluster on ports ${ports.join(", ")} did not form`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    for (const c of clients) c.disconnect();
  }
}

async function formed(clients: Redis[], count: number): Promise<boolean> {
  for (const c of clients) {
    const info = String(await c.call("CLUSTER", "INFO"));
    if (!info.includes("cluster_state:ok") || !info.includes(`cluster_known_nodes:${count}`)) return false;
  }
  return true;
}
