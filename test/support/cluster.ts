import { findRedisServer } from "@lite/testing";

/** The redis-server the cluster suites start (null: they skip, saying why). */
export const redisServerBin = findRedisServer();

/** `describe` when redis-server is on this machine, else a skipped block whose title says why. */
export function describeCluster(title: string, fn: () => void): void {
  if (redisServerBin) describe(title, fn);
  else describe.skip(`${title} (SKIPPED: redis-server not found on PATH or in REDIS_SERVER_BIN)`, fn);
}
