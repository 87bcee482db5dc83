/**
 * The audit pipeline with Redis unreachable (through a TCP proxy that resets every
 * connection; PostgreSQL direct): an AuditQueue appends what Redis refuses to PostgreSQL
 * itself, on the one chain, and refuses (UNAVAILABLE) when PostgreSQL refuses too; the
 * writer stops promptly even while its blocking connection is reconnecting.
 */
import { AuditQueue, AuditWriter, verifyAuditChain } from "@lite/auth";
import { DomainError } from "@lite/core";
import { createDb } from "@lite/db";
import { createRedis, type Redis } from "@lite/redis";
import {
  createTestEnv,
  hostPort,
  sleep,
  startTcpProxy,
  waitFor,
  withTimeout,
  type TcpProxy,
  type TestEnv,
} from "@lite/testing";

let env: TestEnv;
let proxy: TcpProxy;
let proxied: Redis;

beforeAll(async () => {
  env = await createTestEnv();
  proxy = await startTcpProxy(hostPort(env.redisUrl, 6379));
  proxied = createRedis({ url: proxy.url(env.redisUrl), commandTimeoutMs: 300 });
  proxied.on("error", () => undefined);
  // Connected before the tests cut it: the first ping also opens the proxy's own connection
  // to Redis, which on a loaded CI machine took longer than the 300 ms deadline (the whole
  // file failed in its beforeAll); that deadline is for the outage cases, not the setup.
  await waitFor(
    "the proxied Redis connection",
    () =>
      proxied.ping().then(
        () => true,
        () => false,
      ),
    { timeoutMs: 15000 },
  );
});

afterAll(async () => {
  proxy?.restore();
  proxied?.disconnect();
  await proxy?.close();
  await env?.close();
});

const input = (action: string) => ({ actor: "key:k", action, resource: "tenant:x", decision: "OK" as const });

it("appends what Redis refuses to PostgreSQL on the one chain; the writer stores nothing twice after", async () => {
  const queue = new AuditQueue({ redis: proxied, keys: env.keys, db: env.db });
  const writer = new AuditWriter({ db: env.db, redis: env.redis, keys: env.keys });
  await queue.record(input("queued.before"));
  proxy.cut();
  try {
    await queue.record(input("direct.1"), input("direct.2"));
  } finally {
    proxy.restore();
  }
  await writer.flush();
  const rows = await env.db.auditLog.findMany({ orderBy: { seq: "asc" } });
  // direct rows were in PostgreSQL before the writer ran: they come first
  expect(rows.map((r) => r.action)).toEqual(["direct.1", "direct.2", "queued.before"]);
  expect(await verifyAuditChain(env.db)).toMatchObject({ ok: true, rows: 3 });
});

it("refuses with UNAVAILABLE (retryable) when PostgreSQL refuses too", async () => {
  const deadDb = createDb({ url: "postgresql://nobody@127.0.0.1:1/none" });
  const queue = new AuditQueue({ redis: proxied, keys: env.keys, db: deadDb });
  const before = await env.db.auditLog.count();
  proxy.cut();
  try {
    const e = await queue.record(input("lost")).then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(DomainError);
    expect(e).toMatchObject({ code: "UNAVAILABLE", retryable: true });
  } finally {
    proxy.restore();
    await deadDb.$disconnect();
  }
  expect(await env.db.auditLog.count()).toBe(before);
});

it("the writer stops within seconds while Redis is unreachable", async () => {
  const writer = new AuditWriter({ db: env.db, redis: proxied, keys: env.keys, blockMs: 500 });
  writer.start();
  await sleep(300);
  proxy.cut();
  try {
    await sleep(1500); // the blocking connection is between reconnect attempts
    await withTimeout("the writer's stop", writer.stop(), 8000);
  } finally {
    proxy.restore();
  }
});
