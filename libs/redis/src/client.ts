import { Redis, type RedisOptions } from "ioredis";
import { applyCommandDeadline } from "./command-deadline";

export { Redis };

export interface RedisClientOptions {
  url: string;
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

export function createRedis(options: RedisClientOptions): Redis {
  const extra: RedisOptions = {
    connectionName: options.connectionName,
    // Fail fast on the request path; reconnect in the background.
    maxRetriesPerRequest: options.forBullmq ? null : 2,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    enableAutoPipelining: options.autoPipelining ?? false,
  };
  const redis = new Redis(options.url, extra);
  return options.commandTimeoutMs === undefined ? redis : applyCommandDeadline(redis, options.commandTimeoutMs);
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
  const sub = client.duplicate(connectionName ? { connectionName } : {});
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

/** Delete every key under a prefix (test clean-up; never used on the request path). */
export async function deleteByPrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== "0");
  return deleted;
}
