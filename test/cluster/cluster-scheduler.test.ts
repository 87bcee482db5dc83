import { createRedis, deleteByPrefix, isRedisCluster, type Redis } from "@lite/redis";
import { Admission, FairScheduler, type CompletionJob, type TenantLimits } from "@lite/scheduler";
import { createTestEnv, startRedisCluster, type RedisCluster, type TestEnv } from "@lite/testing";
import { allKeys, describeCluster, redisServerBin } from "../support/cluster";

/**
 * Admission and fair dispatch on a 3-master Redis Cluster started from this machine's
 * redis-server: a multi-key script or MULTI whose keys span slots is refused by the cluster
 * (CROSSSLOT), so these passing proves every key carries the hash tag it needs.
 */
const LIMITS: TenantLimits = {
  requestsPerMinute: 1e6,
  tokensPerMinute: 1e9,
  maxConcurrentRequests: 3,
  maxOutstandingTokens: 1e9,
};

let seq = 0;
function job(tenantId: string): CompletionJob {
  return {
    version: 1,
    completionId: `cmp_c${++seq}`,
    tenantId,
    modelName: "default",
    prompt: "hello",
    seed: "1",
    tierIds: ["t0"],
    mode: "FAST",
    temperature: 0,
    maxTokens: 16,
    costWeight: 1,
    degraded: false,
    enqueuedAtMs: 0,
  };
}

/** The master serving `key`'s slot (host:port). */
async function masterOf(redis: Redis, key: string): Promise<string> {
  const slot = Number(await redis.call("CLUSTER", "KEYSLOT", key));
  const ranges = (await redis.call("CLUSTER", "SLOTS")) as Array<[number, number, [string, number]]>;
  const range = ranges.find(([from, to]) => slot >= from && slot <= to)!;
  return `${range[2][0]}:${range[2][1]}`;
}

describeCluster("admission and fair dispatch on a 3-master Redis Cluster", () => {
  let cluster: RedisCluster;
  let env: TestEnv;
  const clients: Redis[] = [];
  const tenants = ["ten_ca", "ten_cb", "ten_cc", "ten_cd", "ten_ce", "ten_cf"];

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, serverBin: redisServerBin! });
    env = await createTestEnv({ redisUrl: cluster.url, redisClusterNodes: cluster.nodes, prefix: "cluster" });
  }, 30000);
  afterAll(async () => {
    for (const c of clients.splice(0)) c.disconnect();
    await env?.close();
    await cluster?.stop();
  });

  function conn(forBullmq = false): Redis {
    const c = createRedis({ url: cluster.url, clusterNodes: cluster.nodes, forBullmq });
    clients.push(c);
    return c;
  }

  test("the clients are cluster clients and the tenants' keys spread over several masters", async () => {
    expect(isRedisCluster(env.redis)).toBe(true);
    const masters = new Set(await Promise.all(tenants.map((t) => masterOf(env.redis, env.keys.admissionState(t)))));
    masters.add(await masterOf(env.redis, env.keys.schedReady()));
    expect(masters.size).toBeGreaterThanOrEqual(2);
  });

  test("admission: admit up to the concurrency limit, refuse the next, settle back to zero", async () => {
    const adm = new Admission({ redis: env.redis, keys: env.keys, maxQueuedTokens: 1e9 });
    const t = tenants[0];
    for (let i = 0; i < 3; i++) {
      const r = await adm.admit({
        tenantId: t,
        completionId: `cmp_a${i}`,
        maxTokens: 10,
        costWeight: 2,
        limits: LIMITS,
      });
      expect(r).toEqual({ ok: true, value: { reservedTokens: 20 } });
    }
    const refused = await adm.admit({
      tenantId: t,
      completionId: "cmp_a3",
      maxTokens: 10,
      costWeight: 2,
      limits: LIMITS,
    });
    expect(refused).toMatchObject({ ok: false, error: { code: "QUOTA_EXCEEDED", limit: "maxConcurrentRequests" } });
    expect(await adm.usage(t)).toEqual({ concurrent: 3, outstandingTokens: 60, queuedTokensGlobal: 60 });
    await adm.progress(t, "cmp_a0", 4);
    expect(await adm.usage(t)).toEqual({ concurrent: 3, outstandingTokens: 52, queuedTokensGlobal: 52 });
    for (let i = 0; i < 3; i++) await adm.settle(t, `cmp_a${i}`, 5);
    expect(await adm.usage(t)).toEqual({ concurrent: 0, outstandingTokens: 0, queuedTokensGlobal: 0 });
  });

  test("dispatch: two schedulers on their own connections drain 6 tenants' jobs exactly once, weights honoured", async () => {
    const producer = new FairScheduler({ redis: conn(), bullConnection: conn(true), keys: env.keys });
    const consumers = [1, 2].map(
      () => new FairScheduler({ redis: conn(), bullConnection: conn(true), keys: env.keys }),
    );
    try {
      const enqueued = new Set<string>();
      for (const t of tenants)
        for (let i = 0; i < 10; i++) {
          const j = job(t);
          enqueued.add(j.completionId);
          await producer.enqueue(j, t === tenants[1] ? 3 : 1);
        }
      const seen: string[] = [];
      const firstTwenty: string[] = [];
      await Promise.all(
        consumers.map(async (s, w) => {
          for (let d = await s.next(`w${w}`); d; d = await s.next(`w${w}`)) {
            seen.push(d.completionId);
            if (firstTwenty.length < 20) firstTwenty.push(d.tenantId);
            await s.charge(d.tenantId, 10, d.job.costWeight);
            await d.complete({});
          }
        }),
      );
      expect(seen.sort()).toEqual([...enqueued].sort());
      // weight 3 among five of weight 1: well over a sixth of the first dispatches
      expect(firstTwenty.filter((t) => t === tenants[1]).length).toBeGreaterThanOrEqual(5);
      expect(await producer.index.readyCount()).toBe(0);
      const cancel = job(tenants[2]);
      await producer.enqueue(cancel, 1);
      expect(await producer.cancel(cancel.tenantId, cancel.completionId)).toBe("removed");
      expect(await consumers[0].next("w0")).toBeNull();
    } finally {
      await Promise.all([producer, ...consumers].map((s) => s.close()));
    }
  });

  test("every key written carries a hash tag", async () => {
    const keys = await allKeys(env.redis, env.redisPrefix);
    expect(keys.length).toBeGreaterThan(10);
    expect(keys.filter((k) => !/\{[^}]+\}/.test(k))).toEqual([]);
  });

  test("deleteByPrefix removes keys on every master", async () => {
    const prefix = `${env.redisPrefix}-del`;
    const keys = tenants.map((t) => `${prefix}:{t:${t}}:x`);
    for (const k of keys) await env.redis.set(k, "1");
    expect(new Set(await Promise.all(keys.map((k) => masterOf(env.redis, k)))).size).toBeGreaterThanOrEqual(2);
    expect(await deleteByPrefix(env.redis, prefix)).toBe(keys.length);
    expect(await allKeys(env.redis, prefix)).toEqual([]);
  });
});
