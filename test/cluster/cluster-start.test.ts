import { bringUpServices } from "../../scripts/services";

/** npm start's service step on a cluster: REDIS_CLUSTER_NODES alone names the Redis to use. */
describe("npm start's services with REDIS_CLUSTER_NODES", () => {
  const base = { DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/postgres" };
  const opts = { dataDir: "/nonexistent", persistent: false };

  it("uses the first node as REDIS_URL and starts no local redis-server", async () => {
    const s = await bringUpServices({ ...base, REDIS_CLUSTER_NODES: " 10.0.0.1:7000 ,10.0.0.2:7000" }, opts);
    expect([s.redisUrl, s.embeddedRedis]).toEqual(["redis://10.0.0.1:7000", false]);
    await s.stop();
  });

  it("keeps REDIS_URL when both are set", async () => {
    const env = { ...base, REDIS_URL: "rediss://u:p@10.0.0.9:6380", REDIS_CLUSTER_NODES: "10.0.0.1:7000" };
    const s = await bringUpServices(env, opts);
    expect([s.redisUrl, s.embeddedRedis]).toEqual(["rediss://u:p@10.0.0.9:6380", false]);
    await s.stop();
  });
});
