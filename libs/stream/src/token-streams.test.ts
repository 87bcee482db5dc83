import { createTestEnv, type TestEnv } from "@lite/testing";
import { TokenStreams } from "./token-streams";
import { StreamExpiredError } from "./stream.errors";
import type { TokenEvent } from "./token-event";

let env: TestEnv;
const streams: TokenStreams[] = [];
let n = 0;
const cid = () => `cmp_s${++n}`;
const T = "ten_stream";

beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await Promise.all(streams.map((s) => s.close()));
  await env.close();
});

function make(opts: Partial<ConstructorParameters<typeof TokenStreams>[0]> = {}): TokenStreams {
  const s = new TokenStreams({ redis: env.redis, keys: env.keys, ttlSeconds: 3600, pollIntervalMs: 30000, ...opts });
  streams.push(s);
  return s;
}

const tok = (index: number): TokenEvent => ({
  version: 1,
  index,
  tokenId: 100 + index,
  text: `t${index}`,
  done: false,
  finishReason: null,
});
const fin = (index: number, finishReason: TokenEvent["finishReason"] = "STOP"): TokenEvent => ({
  version: 1,
  index,
  tokenId: -1,
  text: "",
  done: true,
  finishReason,
});
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => tok(a + i));

async function collect(it: AsyncIterable<TokenEvent>): Promise<TokenEvent[]> {
  const out: TokenEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
}

test("appendMany stores each of a tenant's streams exactly as append does, in one call", async () => {
  const s = make();
  const [a, b, c] = [cid(), cid(), cid()];
  expect(await s.appendMany(T, [])).toEqual([]);
  expect(
    await s.appendMany(T, [
      { completionId: a, events: range(0, 3) },
      { completionId: b, events: [tok(0)] },
    ]),
  ).toEqual([2, 0]);
  // a replay of stored indices is skipped; nothing is stored after a done event
  expect(
    await s.appendMany(T, [
      { completionId: a, events: [...range(0, 4), fin(4)] },
      { completionId: b, events: [tok(1), tok(0)] }, // sorted before storing
      { completionId: c, events: [fin(0, "LENGTH")] },
    ]),
  ).toEqual([4, 1, 0]);
  expect(await s.appendMany(T, [{ completionId: a, events: [tok(5)] }])).toEqual([4]);
  expect((await collect(s.read(T, a, 0))).map((e) => e.index)).toEqual([0, 1, 2, 3, 4]);
  expect(await s.readAll(T, b)).toEqual([tok(0), tok(1)]);
  expect(await s.readAll(T, c)).toEqual([fin(0, "LENGTH")]);
  // a gap in any stream is refused, naming the stream
  await expect(s.appendMany(T, [{ completionId: b, events: [tok(5)] }])).rejects.toThrow(
    /GAP stream .*holds up to index 1, got 5/,
  );
  // the expiries follow append's: retention once done, the safety expiry while running
  const ttlDone = await env.redis.ttl(env.keys.completionStream(T, a));
  const ttlRunning = await env.redis.ttl(env.keys.completionStream(T, b));
  expect(ttlDone).toBeGreaterThan(3000);
  expect(ttlDone).toBeLessThanOrEqual(3600);
  expect(ttlRunning).toBeGreaterThan(3600);
});

test("appendMany pads its streams to a command size without touching the padding", async () => {
  const s = make();
  // 1 … 64 streams take 7 commands (sizes 1, 2, 4 … 64), not one per count: ioredis copies
  // each command onto every pipeline it builds
  const defined = Object.keys((env.redis as unknown as { scriptsSet: object }).scriptsSet);
  expect(defined.filter((n) => n.startsWith("liteStreamAppendMany")).sort()).toEqual(
    [1, 16, 2, 32, 4, 64, 8].map((n) => `liteStreamAppendMany${n}`),
  );
  for (const count of [3, 5, 63, 64, 65, 130]) {
    const ids = Array.from({ length: count }, () => cid());
    // the last stream (the padding's) already holds 0 … 2
    await s.append(T, ids[count - 1], range(0, 3));
    const last = await s.appendMany(
      T,
      ids.map((completionId, i) => ({ completionId, events: range(0, 1 + (i % 3)) })),
    );
    expect(last).toEqual(ids.map((_, i) => (i === count - 1 ? 2 : i % 3)));
    const stored = await Promise.all(ids.map(async (id) => (await s.readAll(T, id)).map((e) => e.index)));
    expect(stored).toEqual(
      ids.map((_, i) => (i === count - 1 ? [0, 1, 2] : range(0, 1 + (i % 3)).map((e) => e.index))),
    );
  }
});

test("appendMany of one tenant never touches another tenant's stream of the same completion id", async () => {
  const s = make();
  const id = cid();
  await s.append("ten_other", id, range(0, 2));
  expect(await s.appendMany(T, [{ completionId: id, events: range(0, 5) }])).toEqual([4]);
  expect((await s.readAll("ten_other", id)).map((e) => e.index)).toEqual([0, 1]);
  expect((await s.readAll(T, id)).map((e) => e.index)).toEqual([0, 1, 2, 3, 4]);
});

test("appendMany wakes a live reader of each stream it stored to", async () => {
  const s = make();
  const reader = make();
  const [a, b] = [cid(), cid()];
  const readA = collect(reader.read(T, a, 0));
  const readB = collect(reader.read(T, b, 0));
  await new Promise((r) => setTimeout(r, 100)); // both readers wait (pollIntervalMs is 30 s)
  await s.appendMany(T, [
    { completionId: a, events: [tok(0), fin(1)] },
    { completionId: b, events: [tok(0), tok(1), fin(2)] },
  ]);
  expect((await readA).map((e) => e.index)).toEqual([0, 1]);
  expect((await readB).map((e) => e.index)).toEqual([0, 1, 2]);
});

test("append is idempotent: a replaying worker re-appending from 0 never duplicates an index", async () => {
  const s = make();
  const id = cid();
  expect(await s.lastIndex(T, id)).toBe(-1);
  expect(await s.append(T, id, range(0, 5))).toBe(4);
  expect(await s.append(T, id, range(0, 8))).toBe(7); // replay after a crash: 0..4 skipped
  expect(await s.append(T, id, [tok(6), tok(7)])).toBe(7);
  expect(await s.append(T, id, [fin(8)])).toBe(8);
  expect(await s.append(T, id, [tok(9), fin(10)])).toBe(8); // nothing after done
  const all = await collect(s.read(T, id, 0));
  expect(all.map((e) => e.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  expect(all[8]).toEqual(fin(8));
  expect(await s.lastIndex(T, id)).toBe(8);
});

test("a gap is refused", async () => {
  const s = make();
  const id = cid();
  await s.append(T, id, range(0, 2));
  await expect(s.append(T, id, [tok(5)])).rejects.toThrow(/GAP/);
  expect(await s.lastIndex(T, id)).toBe(1);
});

test("read replays from fromIndex, then follows live appends (woken, not polled), and ends after done", async () => {
  const s = make();
  const writer = make();
  const id = cid();
  await writer.append(T, id, range(0, 5));
  const started = Date.now();
  const reading = collect(s.read(T, id, 2));
  for (let i = 5; i < 9; i++) {
    await new Promise((r) => setTimeout(r, 30));
    await writer.append(T, id, [tok(i)]);
  }
  await writer.append(T, id, [fin(9, "LENGTH")]);
  const got = await reading;
  expect(got.map((e) => e.index)).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
  expect(got[got.length - 1].finishReason).toBe("LENGTH");
  expect(Date.now() - started).toBeLessThan(5000); // poll interval is 30 s: the wake-ups did it
});

test("two readers of one completion on one TokenStreams both see every event once", async () => {
  const s = make();
  const id = cid();
  const a = collect(s.read(T, id, 0));
  const b = collect(s.read(T, id, 3));
  await new Promise((r) => setTimeout(r, 50)); // "not started yet": both wait
  await s.append(T, id, range(0, 6));
  await s.append(T, id, [fin(6)]);
  expect((await a).map((e) => e.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  expect((await b).map((e) => e.index)).toEqual([3, 4, 5, 6]);
});

test("fromIndex past the done event ends at once; abort ends a waiting read", async () => {
  const s = make();
  const id = cid();
  await s.append(T, id, [tok(0), fin(1)]);
  expect(await collect(s.read(T, id, 5))).toEqual([]);
  const running = cid();
  await s.append(T, running, [tok(0)]);
  const ac = new AbortController();
  const reading = collect(s.read(T, running, 0, ac.signal));
  setTimeout(() => ac.abort(), 100);
  expect((await reading).map((e) => e.index)).toEqual([0]);
});

test("expiry: safety TTL while running, STREAM_TTL_SECONDS after done, then STREAM_EXPIRED", async () => {
  const s = make({ ttlSeconds: 1, runningTtlSeconds: 600 });
  const id = cid();
  await s.append(T, id, range(0, 3));
  const key = env.keys.completionStream(T, id);
  expect(await env.redis.ttl(key)).toBeGreaterThan(500);
  await s.append(T, id, [fin(3)]);
  expect(await env.redis.ttl(key)).toBeLessThanOrEqual(1);
  expect((await collect(s.read(T, id, 0))).length).toBe(4);
  await new Promise((r) => setTimeout(r, 1200));
  expect(await s.exists(T, id)).toBe(false);
  expect(await s.lastIndex(T, id)).toBe(-1);
  // the caller knows the completion is finished: absent means expired
  await expect(collect(s.read(T, id, 0, undefined, { ifAbsent: "expired" }))).rejects.toBeInstanceOf(
    StreamExpiredError,
  );
  await expect(collect(s.read(T, id, 0, undefined, { ifAbsent: "expired" }))).rejects.toMatchObject({
    code: "STREAM_EXPIRED",
  });
});

test("a stream that vanishes while being followed is reported expired", async () => {
  const s = make({ pollIntervalMs: 100 });
  const id = cid();
  await s.append(T, id, range(0, 2));
  const reading = collect(s.read(T, id, 0));
  await new Promise((r) => setTimeout(r, 50));
  await env.redis.del(env.keys.completionStream(T, id));
  await expect(reading).rejects.toBeInstanceOf(StreamExpiredError);
});

test("streams are per tenant: the same completion id under another tenant is another stream", async () => {
  const s = make();
  const id = cid();
  await s.append("ten_one", id, range(0, 3));
  expect(await s.lastIndex("ten_two", id)).toBe(-1);
  expect(env.keys.completionStream("ten_one", id)).toContain("{t:ten_one}");
});

test("many readers starting at once on a new TokenStreams all subscribe and read every event", async () => {
  // Regression: the subscriber connection's ready check raced the first SUBSCRIBE.
  const s = make({ pollIntervalMs: 30000 });
  const ids = Array.from({ length: 60 }, () => cid());
  // Staggered starts: some SUBSCRIBEs land while the new connection is still handshaking.
  const readers = ids.map(async (id, i) => {
    await new Promise((r) => setTimeout(r, i % 20));
    return collect(s.read(T, id, 0, undefined, { ifAbsent: "wait" }));
  });
  await new Promise((r) => setTimeout(r, 100));
  await Promise.all(ids.map((id) => s.append(T, id, [...range(0, 3), fin(3)])));
  const results = await Promise.all(readers);
  for (const events of results) expect(events.map((e) => e.index)).toEqual([0, 1, 2, 3]);
});
