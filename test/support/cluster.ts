import type { Cluster, Redis } from "@lite/redis";
import { findRedisServer } from "@lite/testing";

/** The redis-server the cluster suites start (null: they skip, saying why). */
export const redisServerBin = findRedisServer();

/** `describe` when redis-server is on this machine, else a skipped block whose title says why. */
export function describeCluster(title: string, fn: () => void): void {
  if (redisServerBin) describe(title, fn);
  else describe.skip(`${title} (SKIPPED: redis-server not found on PATH or in REDIS_SERVER_BIN)`, fn);
}

/** Every key under `prefix` on every master of a cluster client. */
export async function allKeys(redis: Redis, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const node of (redis as unknown as Cluster).nodes("master")) {
    let cursor = "0";
    do {
      const [next, keys] = await node.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== "0");
  }
  return out;
}
