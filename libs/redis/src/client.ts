import { Redis, type RedisOptions } from "ioredis";

export { Redis };

export interface RedisClientOptions {
  url: string;
  /** BullMQ blocking connections need maxRetriesPerRequest: null */
  forBullmq?: boolean;
  connectionName?: string;
  /** send commands issued in the same tick in one write (ioredis enableAutoPipelining); default false */
  autoPipelining?: boolean;
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
  return new Redis(options.url, extra);
}

/**
 * A pub/sub connection duplicated from `client` (same URL and retry policy).
 *
 * - No ready check: its INFO is refused ("Connection in subscriber mode") when a SUBSCRIBE
 *   issued during the handshake already put the connection in subscriber mode — seen when
 *   many subscriptions start at once.
 * - No handshake commands (no CLIENT SETNAME / SETINFO, so CLIENT LIST shows no name): with the
 *   ready check off, ioredis 5.11 declares the connection ready when those commands settle,
 *   without checking the socket is still open (redis/ioredis#2099; the fix, #2123, is not in
 *   the 5.11.1 we use). A reset in that window (Redis restarting, a network blip) made the
 *   subscriber "ready" on a closed socket with its reconnect refused, forever: every later
 *   SUBSCRIBE waited in the offline queue. With no handshake commands, ready follows the
 *   socket's connect event in the same tick, before any close can arrive.
 */
export function duplicateSubscriber(client: Redis): Redis {
  return client.duplicate({ connectionName: undefined, disableClientInfo: true, enableReadyCheck: false });
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
