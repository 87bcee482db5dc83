import { Authenticator, parseAuthorization } from "@lite/auth";
import type { PrismaClient } from "@lite/db";
import type { Redis, RedisKeys } from "@lite/redis";
import type { MetricsAuthorizer } from "./metrics-server";

/**
 * /metrics answers ADMIN keys only, checked as the API checks them (libs/auth, hashed keys in
 * PostgreSQL). The worker does not subscribe to key invalidations: a revoked or demoted
 * key is refused within `cacheTtlMs` (1 s), as RUNTIME.md asks of the API.
 */
export function adminKeyAuthorizer(db: PrismaClient, redis: Redis, keys: RedisKeys): MetricsAuthorizer {
  const auth = new Authenticator({ db, redis, keys, cacheTtlMs: 1000 });
  return async (authorization) => {
    const result = await auth.authenticate(parseAuthorization(authorization));
    if (!result.ok) return result.error.code === "FORBIDDEN" ? "forbidden" : "unauthenticated";
    return result.value.role === "ADMIN" ? "ok" : "forbidden";
  };
}
