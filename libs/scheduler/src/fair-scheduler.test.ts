import { createRedis, RedisKeys, type Redis } from "@lite/redis";
import { createTestEnv, type TestEnv } from "@lite/testing";
import { FairScheduler, type FairSchedulerOptions } from "./fair-scheduler";
import type { CompletionJob } from "./job-catalog";
import { testCompletionJob } from "./testing/completion-job";

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

function conn(bull = false): Redis {
  const c = createRedis({ url: env.redisUrl, forBullmq: bull });
  clients.push(c);
  return c;
}

/** A scheduler on its own connections (like another process would have). */
function scheduler(keys: RedisKeys, extra: Partial<FairSchedulerOptions> = {}): FairScheduler {
  const s = new FairScheduler({ redis: conn(), bullConnection: conn(true), keys, ...extra });
  schedulers.push(s);
  return s;
}

function freshKeys(): RedisKeys {
  return new RedisKeys(`${env.redisPrefix}-fs${++run}`);
}

let seq = 0;
function job(tenantId: string, completionId = `cmp_${++seq}`): CompletionJob {
  return testCompletionJob(tenantId, completionId);
}

async function enqueueMany(s: FairScheduler, tenantId: string, count: number, weight: number): Promise<void> {
  for (let i = 0; i < count; i++) await s.enqueue(job(tenantId), weight);
}

describe("weighted fair dispatch", () => {
  test("a weight changed while both tenants are backlogged takes effect at once: 1:1 queues dispatch 1:3, nothing enqueued", async () => {
    const keys = freshKeys();
    const s = scheduler(keys);
    await enqueueMany(s, "ten_a", 150, 1);
    await enqueueMany(s, "ten_b", 150, 1);
    await s.setTenantWeight("ten_b", 3);
    expect(await s.index.weight("ten_b")).toBe(3);
    expect(await s.index.weight("ten_a")).toBe(1);
    const count: Record<string, number> = { ten_a: 0, ten_b: 0 };
    for (let i = 0; i < 120; i++) {
      const d = await s.next("w1");
      count[d!.tenantId]++;
      await s.charge(d!.tenantId, 20, d!.job.costWeight);
      await d!.complete({});
    }
    const ratio = count.ten_b / count.ten_a;
    expect(ratio).toBeGreaterThanOrEqual(2.7);
    expect(ratio).toBeLessThanOrEqual(3.3);
    await expect(s.setTenantWeight("ten_a", 0)).rejects.toThrow("weight must be positive");
  });

  test("two backlogged tenants with weights 1:3 get dispatches and charged tokens within ±10% of 1:3", async () => {
    const keys = freshKeys();
    const s = scheduler(keys);
    await enqueueMany(s, "ten_a", 150, 1);
    await enqueueMany(s, "ten_b", 150, 3);
    const count: Record<string, number> = { ten_a: 0, ten_b: 0 };
    for (let i = 0; i < 120; i++) {
      const d = await s.next("w1");
      expect(d).not.toBeNull();
      count[d!.tenantId]++;
      await s.charge(d!.tenantId, 20, d!.job.costWeight);
      await d!.complete({});
    }
    const ratio = count.ten_b / count.ten_a;
    expect(ratio).toBeGreaterThanOrEqual(2.7);
    expect(ratio).toBeLessThanOrEqual(3.3);
  });

  test("cost weight counts: at equal weight, a tenant whose jobs cost 3× gets equal charged tokens (a third of the dispatches)", async () => {
    const keys = freshKeys();
    const s = scheduler(keys, { dispatchChargeTokens: 0 });
    await enqueueMany(s, "ten_cheap", 100, 1);
    await enqueueMany(s, "ten_dear", 100, 1);
    const tokens: Record<string, number> = { ten_cheap: 0, ten_dear: 0 };
    for (let i = 0; i < 80; i++) {
      const d = (await s.next("w1"))!;
      const cw = d.tenantId === "ten_dear" ? 3 : 1;
      tokens[d.tenantId] += 10 * cw;
      await s.charge(d.tenantId, 10, cw);
      await d.complete({});
    }
    expect(tokens.ten_dear / tokens.ten_cheap).toBeGreaterThan(0.9);
    expect(tokens.ten_dear / tokens.ten_cheap).toBeLessThan(1.1);
  });

  test("three dispatchers filling at once (60 concurrent next calls before any charge) split 1:2:4 by weight: no herd on the smallest virtual time", async () => {
    // Several workers filling their batches at the same moment (a simultaneous start): each
    // pick charges dispatchChargeTokens ÷ weight inside the pick script, so concurrent picks
    // see each other's and spread by weight, not all on the tenant that was smallest first.
    const keys = freshKeys();
    const producer = scheduler(keys);
    const weights: Record<string, number> = { ten_h1: 1, ten_h2: 2, ten_h4: 4 };
    for (const [t, w] of Object.entries(weights)) await enqueueMany(producer, t, 40, w);
    const dispatchers = [scheduler(keys), scheduler(keys), scheduler(keys)];
    const picked = await Promise.all(
      dispatchers.flatMap((s, k) => Array.from({ length: 20 }, () => s.next(`worker${k}`))),
    );
    const count: Record<string, number> = { ten_h1: 0, ten_h2: 0, ten_h4: 0 };
    for (const d of picked) count[d!.tenantId]++;
    // 60 dispatches at 1:2:4 are 8.6 / 17.1 / 34.3; the picks are a weighted round robin, so
    // each count is within one pick of its share.
    for (const [t, w] of Object.entries(weights)) expect(Math.abs(count[t] - (60 * w) / 7)).toBeLessThanOrEqual(1);
    expect(new Set(picked.map((d) => d!.completionId)).size).toBe(60);
  });

  test("a tenant becoming active gets no credit for its idle time", async () => {
    const keys = freshKeys();
    const s = scheduler(keys);
    // ten_idle is served once, then goes idle while ten_busy is served 100 times
    await s.enqueue(job("ten_idle"), 1);
    const first = (await s.next("w"))!;
    await s.charge("ten_idle", 10, 1);
    await first.complete({});
    await enqueueMany(s, "ten_busy", 130, 1);
    for (let i = 0; i < 100; i++) {
      const d = (await s.next("w"))!;
      expect(d.tenantId).toBe("ten_busy");
      await s.charge(d.tenantId, 10, 1);
      await d.complete({});
    }
    // both come back / stay backlogged: the newcomer must not get ~100 dispatches in a row
    await enqueueMany(s, "ten_idle", 30, 1);
    await enqueueMany(s, "ten_new", 30, 1);
    const count: Record<string, number> = { ten_busy: 0, ten_idle: 0, ten_new: 0 };
    for (let i = 0; i < 30; i++) {
      const d = (await s.next("w"))!;
      count[d.tenantId]++;
      await s.charge(d.tenantId, 10, 1);
      await d.complete({});
    }
    for (const t of Object.keys(count)) {
      expect(count[t]).toBeGreaterThanOrEqual(9);
      expect(count[t]).toBeLessThanOrEqual(11);
    }
  });

  test("excludeTenants skips a tenant; the next one by virtual time is taken", async () => {
    const keys = freshKeys();
    const s = scheduler(keys);
    await enqueueMany(s, "ten_x", 2, 1);
    await enqueueMany(s, "ten_y", 2, 1);
    for (let i = 0; i < 2; i++) {
      const d = (await s.next("w", { excludeTenants: ["ten_x"] }))!;
      expect(d.tenantId).toBe("ten_y");
      await d.complete({});
    }
    expect(await s.next("w", { excludeTenants: ["ten_x"] })).toBeNull();
    expect((await s.next("w"))!.tenantId).toBe("ten_x");
  });

  test("a duplicate enqueue (same completionId) is dispatched once", async () => {
    const keys = freshKeys();
    const s = scheduler(keys);
    const j = job("ten_dup");
    await s.enqueue(j, 1);
    await s.enqueue(j, 1);
    const d = (await s.next("w"))!;
    expect(d.completionId).toBe(j.completionId);
    expect(await s.next("w")).toBeNull();
    await d.complete({});
    await s.enqueue(j, 1); // a late duplicate after completion is still ignored
    expect(await s.next("w")).toBeNull();
  });
});

describe("dispatch safety", () => {
  test("two schedulers on separate connections racing never hand out one job twice", async () => {
    const keys = freshKeys();
    const producer = scheduler(keys);
    const tenants = ["ten_r1", "ten_r2", "ten_r3", "ten_r4", "ten_r5"];
    const total = 300;
    const all = new Set<string>();
    for (let i = 0; i < total; i++) {
      const j = job(tenants[i % tenants.length]);
      all.add(j.completionId);
      await producer.enqueue(j, 1 + (i % 3));
    }
    const a = scheduler(keys);
    const b = scheduler(keys);
    const got: string[] = [];
    const loop = async (s: FairScheduler, id: string) => {
      for (;;) {
        const d = await s.next(id);
        if (!d) return;
        got.push(d.completionId);
        await s.charge(d.tenantId, 5, 1);
        await d.complete({});
      }
    };
    await Promise.all([loop(a, "a1"), loop(a, "a2"), loop(a, "a3"), loop(b, "b1"), loop(b, "b2"), loop(b, "b3")]);
    expect(got.length).toBe(total);
    expect(new Set(got).size).toBe(total);
    expect(new Set(got)).toEqual(all);
    expect(await a.index.readyCount()).toBe(0);
  });

  test("a job whose worker died (lock not extended) is swept back and dispatched again", async () => {
    const keys = freshKeys();
    const opts = { lockDurationMs: 300, stalledIntervalMs: 100, autoExtendLocks: false, activeIndexGraceMs: 60000 };
    const dying = scheduler(keys, opts);
    await dying.enqueue(job("ten_die", "cmp_dies"), 1);
    const d1 = (await dying.next("dying"))!;
    expect(d1.attemptsStarted).toBe(1);
    await dying.close(); // the process "dies": no renewals, no completion
    const survivor = scheduler(keys, opts);
    expect(await survivor.next("survivor")).toBeNull(); // still locked: nothing to hand out
    const deadline = Date.now() + 5000;
    let d2 = null;
    while (!d2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      d2 = await survivor.next("survivor"); // its background sweep runs every 100 ms
    }
    expect(d2).not.toBeNull();
    expect(d2!.completionId).toBe("cmp_dies");
    expect(d2!.attemptsStarted).toBe(2);
    expect(d2!.deferredFailure).toBeNull();
    await expect(d1.complete({})).rejects.toThrow(); // the dead worker's token no longer holds the job
    await d2!.complete({ ok: true });
  });

  test("locks are renewed while a job is held (autoExtendLocks), so a live job is not swept", async () => {
    const keys = freshKeys();
    // 1 s locks renewed every 500 ms, observed for 2.5 s (slack for a loaded machine)
    const s = scheduler(keys, { lockDurationMs: 1000, stalledIntervalMs: 100 });
    await s.enqueue(job("ten_live", "cmp_live"), 1);
    const d = (await s.next("w"))!;
    await new Promise((r) => setTimeout(r, 2500));
    const r = await s.sweepStalled();
    expect(r.requeued).toEqual([]);
    expect(await s.next("w")).toBeNull();
    expect(d.lockLost).toBe(false);
    await d.complete({});
  });

  test("fail with retry puts the job back and it is dispatched again; without retry it is not", async () => {
    const keys = freshKeys();
    const s = scheduler(keys);
    await s.enqueue(job("ten_f", "cmp_retry"), 1);
    const d1 = (await s.next("w"))!;
    await d1.fail(new Error("transient"), true);
    const d2 = (await s.next("w"))!;
    expect(d2.completionId).toBe("cmp_retry");
    expect(d2.attemptsMade).toBe(1);
    await d2.fail(new Error("fatal"), false);
    expect(await s.next("w")).toBeNull();
  });

  test("tenant queue handles are bounded and share the scheduler's connections", async () => {
    const keys = freshKeys();
    const name = `bounded-${run}`;
    const redis = createRedis({ url: env.redisUrl, connectionName: name });
    const bull = createRedis({ url: env.redisUrl, forBullmq: true, connectionName: name });
    clients.push(redis, bull);
    const s = new FairScheduler({ redis, bullConnection: bull, keys, maxCachedQueues: 20 });
    schedulers.push(s);
    // connections this scheduler (or BullMQ on its behalf: BullMQ names them after the key prefix) holds
    const mine = async () =>
      ((await env.redis.client("LIST")) as string)
        .split("\n")
        .filter((l) => l.includes(`name=${name}`) || l.includes(keys.prefix)).length;
    for (let i = 0; i < 120; i++) await s.enqueue(job(`ten_many${i}`), 1);
    expect(await mine()).toBe(2);
    let served = 0;
    for (;;) {
      const d = await s.next("w");
      if (!d) break;
      served++;
      await d.complete({});
    }
    expect(served).toBe(120);
    expect(await mine()).toBe(2);
  });
});

describe("cancel", () => {
  test("a waiting job is removed; a running job is flagged; an unknown or finished one is absent", async () => {
    const keys = freshKeys();
    const s = scheduler(keys);
    await s.enqueue(job("ten_c", "cmp_wait"), 1);
    await s.enqueue(job("ten_c", "cmp_run"), 1);
    const running = (await s.next("w"))!;
    expect(running.completionId).toBe("cmp_wait"); // FIFO within a tenant
    expect(await s.isCancelled("ten_c", "cmp_wait")).toBe(false);
    expect(await s.cancel("ten_c", "cmp_wait")).toBe("running");
    expect(await s.isCancelled("ten_c", "cmp_wait")).toBe(true);
    expect(await s.cancel("ten_c", "cmp_run")).toBe("removed");
    expect(await s.next("w")).toBeNull();
    await running.complete({ cancelled: true });
    expect(await s.cancel("ten_c", "cmp_wait")).toBe("absent");
    expect(await s.cancel("ten_c", "cmp_nope")).toBe("absent");
    expect(await s.isCancelled("ten_other", "cmp_wait")).toBe(false);
  });

  test("cancelledAmong answers a tenant's flagged completions in one call, never another tenant's flag of the same id", async () => {
    const keys = freshKeys();
    const s = scheduler(keys);
    await s.enqueue(job("ten_ca", "cmp_ca1"), 1);
    await s.enqueue(job("ten_ca", "cmp_ca2"), 1);
    await s.enqueue(job("ten_cb", "cmp_ca1"), 1); // the same completion id under another tenant
    await s.enqueue(job("ten_cb", "cmp_cb2"), 1);
    await s.flagCancelled("ten_cb", ["cmp_ca1", "cmp_cb2"]);
    expect([...(await s.cancelledAmong("ten_ca", ["cmp_ca1", "cmp_ca2"]))]).toEqual([]);
    await s.flagCancelled("ten_ca", ["cmp_ca2"]);
    expect([...(await s.cancelledAmong("ten_ca", ["cmp_ca1", "cmp_ca2", "cmp_none"]))]).toEqual(["cmp_ca2"]);
    expect([...(await s.cancelledAmong("ten_cb", ["cmp_ca1", "cmp_cb2", "cmp_ca2"]))].sort()).toEqual([
      "cmp_ca1",
      "cmp_cb2",
    ]);
    expect([...(await s.cancelledAmong("ten_ca", []))]).toEqual([]);
  });

  test("flagCancelled flags exactly the named completions of the tenant and leaves their jobs queued", async () => {
    const keys = freshKeys();
    const s = scheduler(keys);
    await s.enqueue(job("ten_f", "cmp_f1"), 1);
    await s.enqueue(job("ten_f", "cmp_f2"), 1);
    await s.flagCancelled("ten_f", ["cmp_f1"]);
    await s.flagCancelled("ten_f", []);
    expect(await s.isCancelled("ten_f", "cmp_f1")).toBe(true);
    expect(await s.isCancelled("ten_f", "cmp_f2")).toBe(false);
    expect(await s.isCancelled("ten_g", "cmp_f1")).toBe(false);
    expect(await s.jobState("ten_f", "cmp_f1")).toBe("waiting");
    expect((await s.next("w"))!.completionId).toBe("cmp_f1");
  });
});

describe("inspectQueues (operator views)", () => {
  test("lists tenants that enqueued, waiting work first, up to the limit, with each tenant's own queue", async () => {
    const keys = freshKeys();
    const s = scheduler(keys);
    expect(await s.inspectQueues(10)).toEqual([]);
    await s.enqueue(job("ten_i1", "cmp_i1"), 1);
    await s.enqueue(job("ten_i2", "cmp_i2"), 1);
    // ten_i1's only job is dispatched and finished: it leaves the ready index but stays listed.
    const d = await s.next("w", { excludeTenants: ["ten_i2"] });
    expect(d!.tenantId).toBe("ten_i1");
    await d!.complete({ ok: true });
    expect(await s.next("w", { excludeTenants: ["ten_i2"] })).toBeNull();
    await s.setTenantWeight("ten_i3", 2); // a weight alone (no work yet) counts as known too
    const all = await s.inspectQueues(10);
    expect(all.map((q) => q.tenantId).sort()).toEqual(["ten_i1", "ten_i2", "ten_i3"]);
    expect(all[0].tenantId).toBe("ten_i2");
    const counts = await all[0].queue.getJobCounts("waiting");
    expect(counts.waiting).toBe(1);
    expect(await all.find((q) => q.tenantId === "ten_i1")!.queue.getJobCounts("waiting")).toEqual({ waiting: 0 });
    expect(await s.inspectQueues(1)).toHaveLength(1);
    expect(await s.inspectQueues(0)).toEqual([]);
  });
});

describe("queueDepth", () => {
  test("counts a tenant's own waiting and running jobs only; null in the single-queue baseline", async () => {
    const keys = freshKeys();
    const s = scheduler(keys);
    expect(await s.queueDepth("ten_q1")).toEqual({ waiting: 0, active: 0 });
    await enqueueMany(s, "ten_q1", 3, 1);
    await enqueueMany(s, "ten_q2", 2, 1);
    const d = await s.next("w", { excludeTenants: ["ten_q2"] });
    expect(d!.tenantId).toBe("ten_q1");
    expect(await s.queueDepth("ten_q1")).toEqual({ waiting: 2, active: 1 });
    expect(await s.queueDepth("ten_q2")).toEqual({ waiting: 2, active: 0 });
    await d!.complete({});
    expect(await s.queueDepth("ten_q1")).toEqual({ waiting: 2, active: 0 });
    expect(await scheduler(freshKeys(), { singleQueue: true }).queueDepth("ten_q1")).toBeNull();
  });
});

describe("chargeMany", () => {
  test("charges every tenant of a step in one call, each as charge() would: tokens ÷ its own weight", async () => {
    const one = freshKeys();
    const many = freshKeys();
    const a = scheduler(one);
    const b = scheduler(many);
    for (const s of [a, b]) {
      await s.enqueue(job("ten_m1"), 1);
      await s.enqueue(job("ten_m2"), 4);
      await s.enqueue(job("ten_m3"), 2);
    }
    await a.charge("ten_m1", 12, 1);
    await a.charge("ten_m2", 12, 3);
    await b.chargeMany(
      new Map([
        ["ten_m1", 12],
        ["ten_m2", 36],
        ["ten_m3", 0],
      ]),
    );
    await b.chargeMany(new Map());
    const vtimes = async (keys: RedisKeys) => {
      const v = await env.redis.hgetall(keys.schedVtime());
      return { m1: v.ten_m1, m2: v.ten_m2, m3: v.ten_m3 };
    };
    const expected = await vtimes(one);
    expect(expected.m1).not.toEqual(expected.m2); // 12 ÷ 1 and 36 ÷ 4 (plus the dispatch-free start)
    expect(await vtimes(many)).toEqual(expected);
    await expect(b.chargeMany(new Map([["ten_m1", -1]]))).rejects.toThrow(/bad charge/);
  });
});

describe("waitForWork (the dispatch loop's wait)", () => {
  test("ends when a tenant becomes ready in another process, long before its poll interval", async () => {
    const keys = freshKeys();
    const worker = scheduler(keys);
    const api = scheduler(keys);
    let woken = false;
    const waiting = worker.waitForWork(60_000).then(() => (woken = true));
    // Its subscriber opens with the wait: a tenant made ready before that is missed (the
    // poll would find it), so tenants keep becoming ready until the wait ends.
    for (let i = 0; i < 100 && !woken; i++) {
      await api.enqueue(job(`ten_w${i}`), 1);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(woken).toBe(true);
    await waiting;
  });

  test("a tenant made ready between two waits ends the next wait at once (the news is kept)", async () => {
    const keys = freshKeys();
    const worker = scheduler(keys);
    const api = scheduler(keys);
    await worker.waitForWork(5); // opens the subscriber; no wait is in progress after it
    const channel = conn();
    const told: string[] = [];
    channel.on("message", (_channel: string, tenantId: string) => told.push(tenantId));
    await channel.subscribe(keys.schedReadyChannel());
    await api.enqueue(job("ten_between"), 1);
    for (let i = 0; i < 250 && told.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(told).toEqual(["ten_between"]);
    // The worker's subscriber had the same message from the same publish; let it land.
    await new Promise((r) => setTimeout(r, 200));
    const ended = await Promise.race([
      worker.waitForWork(60_000).then(() => "woken"),
      new Promise((r) => setTimeout(() => r("still waiting"), 10_000)),
    ]);
    expect(ended).toBe("woken");
    await worker.waitForWork(20); // the news is used once: this wait lasts its interval
    await worker.close();
  });

  test("a tenant already ready is no news; with none the wait lasts its interval; close ends it", async () => {
    const keys = freshKeys();
    const worker = scheduler(keys);
    const api = scheduler(keys);
    await api.enqueue(job("ten_r"), 1);
    await worker.waitForWork(5); // opens the subscriber
    const channel = conn();
    const told: string[] = [];
    channel.on("message", (_channel: string, tenantId: string) => told.push(tenantId));
    await channel.subscribe(keys.schedReadyChannel());
    await api.enqueue(job("ten_r"), 1); // ready already: not published
    await api.enqueue(job("ten_s"), 1); // becomes ready: published
    // Messages arrive in publish order: once ten_s's is here, one for ten_r would be too.
    for (let i = 0; i < 250 && told.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(told).toEqual(["ten_s"]);
    await worker.waitForWork(20); // nothing new: ends by its timer
    const open = worker.waitForWork(60_000);
    await worker.close();
    await open;
  });
});
