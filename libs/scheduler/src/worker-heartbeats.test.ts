import { createRedis, RedisKeys, type Redis } from "@lite/redis";
import { createTestEnv, type TestEnv } from "@lite/testing";
import type { DispatchedJob } from "./dispatched-job";
import { FairScheduler, type FairSchedulerOptions } from "./fair-scheduler";
import { JOB_CATALOG } from "./job-catalog";
import { testCompletionJob } from "./testing/completion-job";

/**
 * Worker heartbeats (worker-heartbeats.ts): a dead worker's jobs come back when its heartbeat
 * expires, not when their locks lapse (the locks here last a minute, longer than any test
 * waits); live workers keep theirs; a worker whose own heartbeat lapsed gives its jobs up.
 */
let env: TestEnv;
const clients: Redis[] = [];
const schedulers: FairScheduler[] = [];
let run = 0;

beforeAll(async () => {
  env = await createTestEnv();
});
afterEach(async () => {
  await Promise.all(schedulers.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await env.close();
});

const LONG_LOCK = { lockDurationMs: 60_000, stalledIntervalMs: 100, heartbeatMs: 400 };

function scheduler(keys: RedisKeys, extra: Partial<FairSchedulerOptions> = {}): FairScheduler {
  const redis = createRedis({ url: env.redisUrl });
  const bull = createRedis({ url: env.redisUrl, forBullmq: true });
  clients.push(redis, bull);
  const s = new FairScheduler({ redis, bullConnection: bull, keys, ...LONG_LOCK, ...extra });
  schedulers.push(s);
  return s;
}

const job = testCompletionJob;

/** The heartbeat ids (`<worker id>/<incarnation>`) of a worker id in the set, with their expiry. */
async function beating(keys: RedisKeys, workerId: string): Promise<Array<{ id: string; expiresAtMs: number }>> {
  const flat = await env.redis.zrange(keys.schedWorkers(), 0, -1, "WITHSCORES");
  const out: Array<{ id: string; expiresAtMs: number }> = [];
  for (let i = 0; i < flat.length; i += 2)
    if (flat[i].startsWith(`${workerId}/`)) out.push({ id: flat[i], expiresAtMs: Number(flat[i + 1]) });
  return out;
}

/** Dispatches for `workerId` until `n` jobs came or the deadline passed. */
async function take(s: FairScheduler, workerId: string, n: number, withinMs = 15_000): Promise<DispatchedJob[]> {
  const got: DispatchedJob[] = [];
  const deadline = Date.now() + withinMs;
  while (got.length < n && Date.now() < deadline) {
    const d = await s.next(workerId);
    if (d) got.push(d);
    else await new Promise((r) => setTimeout(r, 50));
  }
  return got;
}

test("a dead worker's jobs come back once its heartbeat expires (their locks still valid); a live worker keeps its own", async () => {
  const keys = new RedisKeys(`${env.redisPrefix}-hb${++run}`);
  const dying = scheduler(keys);
  const alive = scheduler(keys);
  const survivor = scheduler(keys);
  await dying.enqueue(job("ten_hb1", "cmp_d1"), 1);
  await dying.enqueue(job("ten_hb2", "cmp_d2"), 1);
  const held = await take(dying, "dying", 2);
  expect(held.map((d) => d.completionId).sort()).toEqual(["cmp_d1", "cmp_d2"]);
  await dying.enqueue(job("ten_hb1", "cmp_live"), 1);
  const [live] = await take(alive, "alive", 1);
  expect(live.completionId).toBe("cmp_live");

  await dying.close(); // dies: no more beats, no renewals, its locks held for another minute
  const back = await take(survivor, "survivor", 2);
  expect(back.map((d) => d.completionId).sort()).toEqual(["cmp_d1", "cmp_d2"]);
  expect(back.every((d) => d.attemptsStarted === 2 && d.deferredFailure === null)).toBe(true);
  // the locks are the survivor's now
  const lock = (t: string, id: string) =>
    env.redis.get(`${keys.tenantQueuePrefix(t)}:${JOB_CATALOG.completion.queueName}:${id}:lock`);
  expect(await lock("ten_hb1", "cmp_d1")).toMatch(/^survivor\//);
  expect(await lock("ten_hb2", "cmp_d2")).toMatch(/^survivor\//);

  // the live worker beat all along: its job stayed with it
  expect(await survivor.next("survivor")).toBeNull();
  expect(live.lockLost).toBe(false);
  expect(await live.extendLock()).toBe(true);
  await live.complete({});
  for (const d of back) await d.complete({});
  // the dead worker was claimed (removed) when its jobs were taken over; the live one beats on
  expect(await beating(keys, "dying")).toEqual([]);
  expect(await beating(keys, "alive")).toHaveLength(1);
}, 30_000);

test("a worker whose heartbeat was claimed by a peer gives up every job it holds at its next beat, at once; one expired but unclaimed keeps them", async () => {
  const keys = new RedisKeys(`${env.redisPrefix}-hb${++run}`);
  const stalled = scheduler(keys);
  const other = scheduler(keys);
  await stalled.enqueue(job("ten_lapse", "cmp_l1"), 1);
  await stalled.enqueue(job("ten_lapse", "cmp_l2"), 1);
  const held = await take(stalled, "stalled", 2);
  expect(held.every((d) => !d.lockLost)).toBe(true);
  const [first] = await beating(keys, "stalled");

  // As if its event loop had been blocked past the TTL, no peer looking: it beats on, keeps its jobs.
  await env.redis.zadd(keys.schedWorkers(), 1, first.id);
  await stalled.heartbeat();
  expect(held.some((d) => d.lockLost)).toBe(false);
  expect((await beating(keys, "stalled"))[0].expiresAtMs).toBeGreaterThan(1);
  expect(await other.next("other")).toBeNull();

  // A peer claimed it (removed it from the set, as hb-forget does before a takeover).
  await env.redis.zrem(keys.schedWorkers(), first.id);
  await stalled.heartbeat();
  expect(held.every((d) => d.lockLost)).toBe(true);
  // released at once (not after the minute-long locks): another worker takes both now
  const again = [await other.next("other"), await other.next("other")];
  expect(again.map((d) => d?.completionId).sort()).toEqual(["cmp_l1", "cmp_l2"]);
  await expect(held[0].complete({})).rejects.toThrow();
  for (const d of again) await d!.complete({});
  // never back under the claimed id: a new incarnation beats and holds its new jobs
  const now = await beating(keys, "stalled");
  expect(now).toHaveLength(1);
  expect(now[0].id).not.toBe(first.id);
  await stalled.enqueue(job("ten_lapse", "cmp_l3"), 1);
  const [d3] = await take(stalled, "stalled", 1);
  const lock = await env.redis.get(
    `${keys.tenantQueuePrefix("ten_lapse")}:${JOB_CATALOG.completion.queueName}:cmp_l3:lock`,
  );
  expect(lock?.startsWith(`${now[0].id}:`)).toBe(true);
  expect(d3.lockLost).toBe(false);
}, 30_000);

test("beats never overlap: once any heartbeat call returns, a give-up begun by a beat before it is complete", async () => {
  const keys = new RedisKeys(`${env.redisPrefix}-hb${++run}`);
  const stalled = scheduler(keys);
  // one job on each of many tenant queues: the give-up releases them queue by queue
  const tenants = Array.from({ length: 40 }, (_, i) => `ten_overlap${i}`);
  for (const t of tenants) await stalled.enqueue(job(t, `cmp_${t}`), 1);
  const held = await take(stalled, "stalled", tenants.length);
  expect(held).toHaveLength(tenants.length);
  const [first] = await beating(keys, "stalled");
  await env.redis.zrem(keys.schedWorkers(), first.id);
  // the first beat finds the claim and gives the jobs up; the second, called meanwhile (as the
  // background loop and an explicit call may be), returns only after that give-up
  const earlier = stalled.heartbeat();
  await stalled.heartbeat();
  expect(held.every((d) => d.lockLost)).toBe(true);
  const depths = await Promise.all(tenants.map((t) => stalled.queueDepth(t)));
  expect(depths.filter((d) => d?.active !== 0)).toEqual([]);
  await earlier;
}, 30_000);

test("an observer whose own heartbeat only just started takes nothing over (after a Redis outage every heartbeat has lapsed)", async () => {
  const keys = new RedisKeys(`${env.redisPrefix}-hb${++run}`);
  const ghost = scheduler(keys);
  await ghost.enqueue(job("ten_ghost", "cmp_g"), 1);
  const [g] = await take(ghost, "ghost", 1);
  await ghost.close();
  const [ghostId] = await beating(keys, "ghost");
  await env.redis.zadd(keys.schedWorkers(), 1, ghostId.id); // long expired
  // a fresh observer's first beat: its own continuity is shorter than one TTL
  const observer = scheduler(keys, { heartbeatMs: 60_000 });
  expect(await observer.next("observer")).toBeNull();
  const r = await observer.heartbeat();
  expect(r?.requeued ?? []).toEqual([]);
  expect(await beating(keys, "ghost")).toHaveLength(1);
  expect(await g.extendLock()).toBe(true); // still the ghost's
}, 30_000);
