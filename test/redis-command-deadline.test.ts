/**
 * libs/redis' request-path deadline: while Redis is unreachable (through a TCP proxy that
 * resets every connection), a command is refused with RedisCommandTimeoutError within its
 * bound, and a command refused so is never sent once Redis is back (ioredis would replay it
 * from its offline queue behind its caller's back). Blocking reads keep waiting.
 */
import { isTransientInfraError } from "@lite/core";
import { createRedis, RedisCommandTimeoutError, type Redis } from "@lite/redis";
import { createTestEnv, hostPort, startTcpProxy, waitFor, type TcpProxy, type TestEnv } from "@lite/testing";

const BOUND_MS = 300;
let env: TestEnv;
let proxy: TcpProxy;
let proxied: Redis;
let bull: Redis;

beforeAll(async () => {
  env = await createTestEnv();
  proxy = await startTcpProxy(hostPort(env.redisUrl, 6379));
  proxied = createRedis({ url: proxy.url(env.redisUrl), commandTimeoutMs: BOUND_MS });
  proxied.on("error", () => undefined);
  bull = createRedis({ url: proxy.url(env.redisUrl), forBullmq: true, commandTimeoutMs: BOUND_MS });
  bull.on("error", () => undefined);
  // Connected first: on a loaded CI machine the first connection through the proxy took more
  // than the 300 ms bound, and the setup's ping was refused by the very deadline under test.
  for (const c of [proxied, bull])
    await waitFor(
      "a first answer through the proxy",
      () =>
        c.ping().then(
          (r) => r === "PONG",
          () => false,
        ),
      { timeoutMs: 20000, everyMs: 100 },
    );
});

afterAll(async () => {
  proxied?.disconnect();
  bull?.disconnect();
  await proxy?.close();
  await env?.close();
});

async function refusedWithin(op: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  const error = await op().then(
    () => null,
    (e: unknown) => e,
  );
  return { error, ms: Date.now() - started };
}

it("refuses within the bound while Redis is unreachable, never sends the refused command later, and recovers", async () => {
  const key = `${env.keys.global("deadline")}:n`;
  const bullKey = `${key}:bull`;
  proxy.cut();
  try {
    for (const [client, k] of [
      [proxied, key],
      [bull, bullKey],
    ] as const) {
      // A lone command and a pipeline (a BullMQ connection has maxRetriesPerRequest null:
      // without the deadline it would wait for the whole outage).
      // (The request-path client may give up earlier, on ioredis' maxRetriesPerRequest.)
      const lone = await refusedWithin(() => client.incr(k));
      expect(isTransientInfraError(lone.error)).toBe(true);
      expect(lone.ms).toBeLessThan(BOUND_MS + 2000);
      if (client === bull) expect(lone.error).toBeInstanceOf(RedisCommandTimeoutError);
      const piped = await refusedWithin(async () => {
        const r = await client.pipeline().incr(k).incr(k).exec();
        throw r?.[0]?.[0] ?? new Error("the pipeline succeeded");
      });
      expect(isTransientInfraError(piped.error)).toBe(true);
      expect(piped.ms).toBeLessThan(BOUND_MS + 2000);
    }
  } finally {
    proxy.restore();
  }
  await waitFor("the proxied clients reconnect", async () => proxied.status === "ready" && bull.status === "ready");
  expect(await proxied.incr(key)).toBe(1); // none of the refused INCRs ran
  expect(await bull.incr(bullKey)).toBe(1);
  expect(await env.redis.get(key)).toBe("1");
});

it("a process stall longer than the bound is not a Redis timeout: the answer received meanwhile wins", async () => {
  const key = `${env.keys.global("deadline")}:stall`;
  await env.redis.set(key, "v");
  for (const client of [proxied, bull]) {
    const pending = client.get(key);
    const until = Date.now() + BOUND_MS * 2;
    while (Date.now() < until); // the event loop blocked (CPU starved, a long synchronous task)
    await expect(pending).resolves.toBe("v");
  }
});

it("leaves blocking reads alone: an XREAD BLOCK longer than the bound returns normally", async () => {
  const stream = `${env.keys.global("deadline")}:s`;
  const started = Date.now();
  const r = await proxied.xread("BLOCK", BOUND_MS * 3, "STREAMS", stream, "$");
  expect(r).toBeNull();
  expect(Date.now() - started).toBeGreaterThanOrEqual(BOUND_MS * 3 - 50);
});
