/**
 * The environment of the billing commands: the API's DATABASE_URL, REDIS_URL, REDIS_PREFIX
 * and REDIS_CLUSTER_NODES. A bad or missing variable is one line per variable and exit 2
 * (exit 1 is kept for what the command found: a failed reconciliation, an export refused).
 */
import { z } from "zod";
import { ConfigError, parseEnv, serviceEnvFields } from "@lite/config";
import { createDb, type PrismaClient } from "@lite/db";
import { createRedis, RedisKeys, type Redis } from "@lite/redis";
import { BAD_ARGS_EXIT } from "./billing-args";

const BillingEnv = z.object({
  DATABASE_URL: serviceEnvFields.DATABASE_URL,
  REDIS_URL: serviceEnvFields.REDIS_URL,
  REDIS_CLUSTER_NODES: serviceEnvFields.REDIS_CLUSTER_NODES,
  REDIS_PREFIX: serviceEnvFields.REDIS_PREFIX,
});

export interface BillingServices {
  db: PrismaClient;
  redis: Redis;
  keys: RedisKeys;
  close(): Promise<void>;
}

export function billingServicesOrExit(command: string): BillingServices {
  let env: z.output<typeof BillingEnv>;
  try {
    env = parseEnv(BillingEnv, process.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const line of e.lines) process.stderr.write(`${command}: ${line}\n`);
    process.exit(BAD_ARGS_EXIT);
  }
  const db = createDb({ url: env.DATABASE_URL as string, poolSize: 4 });
  const redis = createRedis({
    url: env.REDIS_URL as string,
    clusterNodes: env.REDIS_CLUSTER_NODES,
    connectionName: command,
  });
  return {
    db,
    redis,
    keys: new RedisKeys(env.REDIS_PREFIX),
    async close() {
      await db.$disconnect();
      redis.disconnect();
    },
  };
}
