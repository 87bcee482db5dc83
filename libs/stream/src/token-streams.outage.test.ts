/**
 * A reader that starts after Redis was briefly unreachable still gets its events.
 *
 * Regression (the end-to-end Redis-outage test hung in whole-suite runs): the shared
 * subscriber connection, reconnecting through a TCP proxy that accepts and then resets,
 * was declared ready on a closed socket by ioredis (redis/ioredis#2099) and never
 * reconnected, so every later SUBSCRIBE — and the reader behind it — waited forever.
 */
import { createRedis, type Redis } from "@lite/redis";
import { createTestEnv, hostPort, sleep, startTcpProxy, withTimeout, type TcpProxy, type TestEnv } from "@lite/testing";
import { TokenStreams } from "./token-streams";
import type { TokenEvent } from "./token-event";

const T = "ten_outage";
let env: TestEnv;
let proxy: TcpProxy;
let proxied: Redis;
let streams: TokenStreams;

beforeAll(async () => {
  env = await createTestEnv();
  proxy = await startTcpProxy(hostPort(env.redisUrl, 6379));
  proxied = createRedis({ url: proxy.url(env.redisUrl) });
  proxied.on("error", () => undefined);
  streams = new TokenStreams({ redis: proxied, keys: env.keys, pollIntervalMs: 30000 });
});

afterAll(async () => {
  // Bounded: with the regression, the subscriber's QUIT would wait in its offline queue.
  await withTimeout("closing the streams", streams.close(), 2000).catch(() => undefined);
  proxied?.disconnect();
  await proxy?.close();
  await env?.close();
});

const events = (n: number): TokenEvent[] =>
  Array.from({ length: n + 1 }, (_, index) => ({
    version: 1 as const,
    index,
    tokenId: index < n ? index : -1,
    text: index < n ? `t${index}` : "",
    done: index === n,
    finishReason: index === n ? ("STOP" as const) : null,
  }));

function readAll(completionId: string, timeoutMs: number): Promise<number[]> {
  const read = (async () => {
    const out: number[] = [];
    for await (const e of streams.read(T, completionId, 0)) out.push(e.index);
    return out;
  })();
  return withTimeout(`the read of ${completionId}`, read, timeoutMs);
}

it("a reader after a 2 s outage is served (the subscriber reconnects)", async () => {
  const writer = new TokenStreams({ redis: env.redis, keys: env.keys });
  await writer.append(T, "cmp_before", events(2));
  // The first reader opens the shared subscriber connection (through the proxy).
  expect(await readAll("cmp_before", 10000)).toEqual([0, 1, 2]);
  proxy.cut();
  // A command during the outage, as an API request would issue: ioredis gives up on it.
  await expect(proxied.get("x")).rejects.toThrow();
  await sleep(2000);
  proxy.restore();
  await writer.append(T, "cmp_after", events(1));
  expect(await readAll("cmp_after", 15000)).toEqual([0, 1]);
}, 40000);
