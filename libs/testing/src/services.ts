import { randomBytes } from "node:crypto";
import pg from "pg";
import { createDb, disconnectDb, type PrismaClient } from "@lite/db";
import { createRedis, deleteByPrefix, RedisKeys, type Redis } from "@lite/redis";

/**
 * Per-test-file isolation on the real services started by `npm test`
 * (scripts/test.ts): a fresh database cloned from the migrated template, and a
 * unique Redis key prefix. Both are removed by `close()`.
 */
export interface TestEnvOptions {
  /** server to create the database on; default DATABASE_URL */
  databaseUrl?: string;
  /** default REDIS_URL */
  redisUrl?: string;
  /** Redis Cluster seed nodes (`host:port`, e.g. startRedisCluster().nodes): every client is a cluster client */
  redisClusterNodes?: string[];
  /** migrated template database to clone; default TEST_TEMPLATE_DB */
  template?: string;
  /** first word of the database name and Redis prefix (`<prefix>-<12 hex>`); default "test" */
  prefix?: string;
}

export interface TestEnv {
  databaseUrl: string;
  redisUrl: string;
  /** [] unless the env runs on a Redis Cluster; pass as `clusterNodes` to createRedis, REDIS_CLUSTER_NODES to processes */
  redisClusterNodes: string[];
  redisPrefix: string;
  keys: RedisKeys;
  db: PrismaClient;
  redis: Redis;
  close(): Promise<void>;
}

function requireEnv(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is unset: run integration tests through \`npm test [-- <jest args>]\``);
  return v;
}

export function withDatabase(base: string, database: string): string {
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export async function createTestEnv(opts: TestEnvOptions = {}): Promise<TestEnv> {
  const baseUrl = opts.databaseUrl ?? requireEnv("DATABASE_URL");
  const redisUrl = opts.redisUrl ?? requireEnv("REDIS_URL");
  const template = opts.template ?? requireEnv("TEST_TEMPLATE_DB");
  const prefix = opts.prefix ?? "test";
  const suffix = randomBytes(6).toString("hex");
  const database = prefix === "test" ? `lite_t_${suffix}` : `lite_${prefix}_${suffix}`;
  // CREATE DATABASE … TEMPLATE fails while another session uses the template; retry briefly.
  for (let attempt = 0; ; attempt++) {
    try {
      await adminQuery(baseUrl, `CREATE DATABASE "${database}" TEMPLATE "${template}"`);
      break;
    } catch (e) {
      if (attempt > 20) throw e;
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
    }
  }
  const databaseUrl = withDatabase(baseUrl, database);
  const redisPrefix = `${prefix}-${suffix}`;
  const db = createDb({ url: databaseUrl, poolSize: 5 });
  const redisClusterNodes = opts.redisClusterNodes ?? [];
  const redis = createRedis({ url: redisUrl, clusterNodes: redisClusterNodes, connectionName: redisPrefix });
  return {
    databaseUrl,
    redisUrl,
    redisClusterNodes,
    redisPrefix,
    keys: new RedisKeys(redisPrefix),
    db,
    redis,
    async close() {
      await disconnectDb(db).catch(() => false);
      await deleteByPrefix(redis, redisPrefix).catch(() => undefined);
      redis.disconnect();
      await adminQuery(baseUrl, `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    },
  };
}
