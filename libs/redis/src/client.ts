import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import { applyCommandDeadline } from "./command-deadline";

export { Cluster, Redis };

export interface RedisClientOptions {
  /**
   * The server (REDIS_URL). With `clusterNodes`: one more seed node, and the source of the
   * credentials and TLS (`rediss:`) every node connection uses.
   */
  url: string;
  /**
   * Redis Cluster seed nodes, `host:port` each (REDIS_CLUSTER_NODES). Set: the client is an
   * ioredis `Cluster` (see `createRedis`); unset or empty: one server at `url`.
   */
  clusterNodes?: readonly string[];
  /** BullMQ blocking connections need maxRetriesPerRequest: null */
  forBullmq?: boolean;
  connectionName?: string;
  /** send commands issued in the same tick in one write (ioredis enableAutoPipelining); default false */
  autoPipelining?: boolean;
  /**
   * Request-path clients: a command without an answer this long after it was issued is
   * rejected with RedisCommandTimeoutError and never sent later (command-deadline.ts).
   * Unset: ioredis' own behaviour (a command waits in the offline queue while reconnecting).
   */
  commandTimeoutMs?: number;
}

/** ioredis reconnect delay: 100 ms doubling to 2 s. */
const backoffMs = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000);

/**
 * A client for `url`, or for the cluster `clusterNodes` seed. Typed `Redis` either way, a cast
 * at this one boundary: a `Cluster` answers every command the code base sends (each Lua
 * script, MULTI and pipeline stays in one hash slot: RedisKeys), and the members that differ
 * have helpers here: `duplicateRedis` (Cluster.duplicate takes seed nodes first),
 * `deleteByPrefix` (SCAN walks one server: here every master), `isRedisCluster`.
 */
export function createRedis(options: RedisClientOptions): Redis {
  if (options.clusterNodes && options.clusterNodes.length > 0) return createCluster(options, options.clusterNodes);
  const extra: RedisOptions = {
    connectionName: options.connectionName,
    // Fail fast on the request path; reconnect in the background.
    maxRetriesPerRequest: options.forBullmq ? null : 2,
    enableReadyCheck: true,
    retryStrategy: backoffMs,
    enableAutoPipelining: options.autoPipelining ?? false,
  };
  const redis = new Redis(options.url, extra);
  return options.commandTimeoutMs === undefined ? redis : applyCommandDeadline(redis, options.commandTimeoutMs);
}

function createCluster(options: RedisClientOptions, nodes: readonly string[]): Redis {
  const seed = new URL(options.url);
  const clusterOptions: ClusterOptions = {
    redisOptions: {
      connectionName: options.connectionName,
      maxRetriesPerRequest: options.forBullmq ? null : 2,
      username: seed.username ? decodeURIComponent(seed.username) : undefined,
      password: seed.password ? decodeURIComponent(seed.password) : undefined,
      tls: seed.protocol === "rediss:" ? {} : undefined,
    },
    // TLS: connect to the names the cluster announces, not their resolved addresses, so the
    // certificate check sees the name (ioredis' advice for TLS clusters such as ElastiCache).
    ...(seed.protocol === "rediss:" ? { dnsLookup: (address, done) => done(null, address) } : {}),
    enableReadyCheck: true,
    clusterRetryStrategy: backoffMs,
    enableAutoPipelining: options.autoPipelining ?? false,
  };
  const startup = [...new Set([`${seed.hostname}:${seed.port || 6379}`, ...nodes])].map(parseHostPort);
  // The cast (see createRedis): the command surface is shared; command-deadline.ts wraps
  // Cluster.sendCommand the same way, re-entries after MOVED or the offline queue included.
  const cluster = new Cluster(startup, clusterOptions) as unknown as Redis;
  return options.commandTimeoutMs === undefined ? cluster : applyCommandDeadline(cluster, options.commandTimeoutMs);
}

/** `host:port` (IPv6 in brackets: `[::1]:7000`) → ioredis' node form. */
export function parseHostPort(node: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(node.trim());
  if (!m || Number(m[2]) > 65535) throw new Error(`"${node}" is not host:port`);
  return { host: m[1], port: Number(m[2]) };
}

/** Whether `client` is a Redis Cluster client (createRedis with clusterNodes). */
export function isRedisCluster(client: Redis): boolean {
  return (client as unknown as { isCluster?: boolean }).isCluster === true;
}

/** The masters of a cluster client (connected), or the client itself. */
function servers(client: Redis): Redis[] {
  return isRedisCluster(client) ? (client as unknown as Cluster).nodes("master") : [client];
}

/**
 * A new connection with `client`'s options (a new Cluster with the same seeds for a cluster
 * client): `client.duplicate({ connectionName })` would hand a Cluster the options as its
 * seed nodes. `extra`: options over the copied ones (e.g. `blockingTimeout` for a blocking reader).
 */
export function duplicateRedis(client: Redis, connectionName?: string, extra: RedisOptions = {}): Redis {
  const own: RedisOptions = { ...extra, ...(connectionName ? { connectionName } : {}) };
  if (!isRedisCluster(client)) return client.duplicate(own);
  const cluster = client as unknown as Cluster;
  const redisOptions = { ...cluster.options.redisOptions, ...own };
  return cluster.duplicate([], { redisOptions }) as unknown as Redis;
}

/**
 * A pub/sub connection duplicated from `client` (same URL and retry policy), whose
 * `subscribe` never goes out during the connection handshake.
 *
 * Why: a SUBSCRIBE sent while the connection is between TCP connect and ready (ioredis
 * writes it at once: it may run while Redis loads) puts the connection in subscriber mode,
 * and the ready check's INFO that follows is refused ("Connection in subscriber mode") —
 * seen when many readers start at once. Turning the ready check off instead is worse: with
 * it off, ioredis 5.11 declares the connection ready when its CLIENT SETNAME/SETINFO
 * handshake settles, even after the socket closed (redis/ioredis#2099; the fix, #2123, is
 * not in 5.11.1), and a reset in that window left a subscriber "ready" on a dead socket,
 * never reconnecting: every later SUBSCRIBE waited forever. So the ready check stays on and
 * a SUBSCRIBE issued during the handshake waits for it to end (ready, or closed — then the
 * command is queued until the next ready, like any command).
 */
export function duplicateSubscriber(client: Redis, connectionName?: string): Redis {
  const sub = duplicateRedis(client, connectionName);
  const subscribe = sub.subscribe.bind(sub) as (...channels: string[]) => Promise<unknown>;
  const guarded = async (...channels: string[]) => {
    while (sub.status === "connect") await handshakeOver(sub);
    return subscribe(...channels);
  };
  (sub as unknown as { subscribe: typeof guarded }).subscribe = guarded;
  return sub;
}

/** Resolves when the connection leaves the handshake (ready, closed or ended). */
function handshakeOver(c: Redis): Promise<void> {
  return new Promise((resolve) => {
    const events = ["ready", "close", "end"] as const;
    const done = () => {
      for (const e of events) c.off(e, done);
      resolve();
    };
    for (const e of events) c.on(e, done);
  });
}

export async function pingRedis(redis: Redis, timeoutMs = 1000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const answer = await Promise.race([
      redis.ping(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("timeout")), timeoutMs);
      }),
    ]);
    return answer === "PONG";
  } catch {
    return false;
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/**
 * Delete every key under a prefix (test clean-up; never used on the request path). On a
 * cluster, SCAN walks one server: every master is scanned, and keys are unlinked one by one
 * (a multi-key UNLINK must stay in one slot).
 */
export async function deleteByPrefix(redis: Redis, prefix: string): Promise<number> {
  const cluster = isRedisCluster(redis);
  if (cluster) await redis.ping(); // ready: the slot map, hence the master list, is known
  let deleted = 0;
  for (const server of servers(redis)) {
    let cursor = "0";
    do {
      const [next, keys] = await server.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length === 0) continue;
      if (!cluster) deleted += await server.unlink(...keys);
      else for (const key of keys) deleted += await redis.unlink(key);
    } while (cursor !== "0");
  }
  return deleted;
}
