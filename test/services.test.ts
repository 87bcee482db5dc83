import { createTestEnv, type TestEnv } from "@lite/testing";

describe("test services", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv();
  });
  afterAll(async () => {
    await env.close();
  });

  it("gives each test file a migrated database of its own", async () => {
    const rows = await env.db.$queryRaw<Array<{ n: bigint }>>`SELECT count(*)::bigint AS n FROM "_prisma_migrations"`;
    expect(Number(rows[0].n)).toBeGreaterThanOrEqual(1);
    expect(await env.db.tenant.count()).toBe(0);
  });

  it("gives each test file its own Redis prefix", async () => {
    await env.redis.set(`${env.redisPrefix}:probe`, "1");
    expect(await env.redis.get(`${env.redisPrefix}:probe`)).toBe("1");
  });

  it("keeps the audit log append-only", async () => {
    await env.db.auditLog.create({
      data: {
        seq: 1n,
        at: new Date(),
        actor: "t",
        action: "a",
        resource: "r",
        decision: "OK",
        prevHash: "0",
        hash: "h",
      },
    });
    await env.db.$executeRaw`UPDATE "AuditLog" SET actor = 'x'`;
    await env.db.$executeRaw`DELETE FROM "AuditLog"`;
    const row = await env.db.auditLog.findUniqueOrThrow({ where: { seq: 1n } });
    expect(row.actor).toBe("t");
  });
});
