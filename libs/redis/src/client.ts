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
