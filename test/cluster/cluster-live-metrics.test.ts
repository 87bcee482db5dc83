/**
 * Live tenant metrics on a 3-master Redis Cluster: every key is one tenant's and carries its
 * `{t:<id>}` hash tag, so recorders and readers work unchanged on a cluster client, with the
 * tenants spread over the masters.
 */
import { createTestEnv, startRedisCluster, type RedisCluster, type TestEnv } from "@lite/testing";
import { LiveMetricsRecorder, readLiveMetrics } from "@lite/telemetry";
import { allKeys, describeCluster, redisServerBin } from "../support/cluster";

describeCluster("live tenant metrics on a 3-master Redis Cluster", () => {
  let cluster: RedisCluster;
  let env: TestEnv;
  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, serverBin: redisServerBin! });
    env = await createTestEnv({ redisUrl: cluster.url, redisClusterNodes: cluster.nodes, prefix: "cluster" });
  }, 60000);
  afterAll(async () => {
    await env?.close();
    await cluster?.stop();
  });

  it("two processes' figures for 12 tenants sum per tenant, each tenant's keys in one slot", async () => {
    const tenants = Array.from({ length: 12 }, (_, i) => `ten_cluster_live_${i}`);
    const api = new LiveMetricsRecorder({ redis: env.redis, keys: env.keys, processId: "api-1" });
    const worker = new LiveMetricsRecorder({ redis: env.redis, keys: env.keys, processId: "worker-1" });
    worker.readGauges(() =>
      tenants.map((tenantId, i) => ({ tenantId, hotBytes: i + 1, warmBytes: 2 * (i + 1), kvBytes: 0 })),
    );
    tenants.forEach((t, i) => {
      for (let k = 0; k <= i; k++) api.request(t);
      worker.outputTokens(t, 10 * (i + 1));
      worker.ttftMs(t, 5);
    });
    await Promise.all([api.flush(), worker.flush()]);
    for (const [i, t] of tenants.entries()) {
      const m = await readLiveMetrics(env.redis, env.keys, t, { windowSeconds: 60, nowMs: Date.now() });
      expect(m).toMatchObject({ requests: i + 1, outputTokens: BigInt(10 * (i + 1)), hotBytes: BigInt(i + 1) });
      expect(m.ttftP50Ms).not.toBeNull();
    }
    const keys = await allKeys(env.redis, `${env.redisPrefix}:`);
    const slots = new Set<number>();
    for (const t of tenants) {
      const own = keys.filter((k) => k.includes(`{t:${t}}`));
      expect(own.length).toBeGreaterThanOrEqual(2);
      const tenantSlots = new Set(await Promise.all(own.map((k) => env.redis.call("CLUSTER", "KEYSLOT", k))));
      expect(tenantSlots.size).toBe(1);
      for (const s of tenantSlots) slots.add(Number(s));
    }
    expect(slots.size).toBeGreaterThan(1);
  });
});
