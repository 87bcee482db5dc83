/**
 * The audit log: events queued by any process, appended in queue order by one writer at a
 * time, hash-chained; `npm run audit:verify` finds the first bad entry.
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { AuditQueue, AuditWriter, auditStreamKey, verifyAuditChain } from "@lite/auth";
import { createDb } from "@lite/db";
import { gql, gqlOk, seedModel, TEST_ADMIN_KEY, type TestEnv, waitFor } from "@lite/testing";
import type { RunningApiServer } from "../../apps/api/src/server";
import { startStack, type TestStack } from "../support/stack";

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const root = path.resolve(__dirname, "..", "..");
let stack: TestStack;
let env: TestEnv;
let api: RunningApiServer;

function auditVerify(): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ["-r", "./scripts/register.js", "scripts/audit-verify.ts"], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: env.databaseUrl },
    encoding: "utf8",
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(async () => {
  stack = await startStack({ prepare: (e) => seedModel(e.db) });
  ({ env, api } = stack);
});

afterAll(async () => {
  await stack?.close();
});

describe("audit log", () => {
  it("records admin changes, key creation, tier grants and denials, chained and verifiable", async () => {
    const made = await gqlOk(
      api.url,
      TEST_ADMIN_KEY,
      'mutation { createTenant(input: { name: "audited", tierIds: ["tiny.t0"] }) { tenant { id } apiKey { secret apiKey { id } } } }',
    );
    const tenantId = made.createTenant.tenant.id;
    await gqlOk(api.url, TEST_ADMIN_KEY, `mutation { grantTier(tenantId: "${tenantId}", tierId: "tiny.t3") { id } }`);
    await gqlOk(
      api.url,
      TEST_ADMIN_KEY,
      `mutation { setQuota(tenantId: "${tenantId}", input: { requestsPerMinute: 5 }) { id } }`,
    );
    await fetch(api.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${made.createTenant.apiKey.secret}` },
      body: JSON.stringify({ query: "{ tenants { totalCount } }" }),
    });
    await api.services.auditWriter.flush();

    const rows = await env.db.auditLog.findMany({ where: { tenantId }, orderBy: { seq: "asc" } });
    const actions = rows.map((r) => `${r.action}/${r.decision}`);
    expect(actions).toEqual(
      expect.arrayContaining([
        "tenant.create/OK",
        "tier.grant/OK",
        "apikey.create/OK",
        "quota.set/OK",
        "access.role/DENY",
      ]),
    );
    expect(
      rows
        .filter((r) => r.action === "tier.grant")
        .map((r) => r.resource)
        .sort(),
    ).toEqual(["tier:tiny.t0", "tier:tiny.t3"]);

    const page = await gqlOk(
      api.url,
      TEST_ADMIN_KEY,
      `{ auditLog(tenantId: "${tenantId}", first: 2) { nodes { seq action hash } pageInfo { hasNextPage endCursor } } }`,
    );
    expect(page.auditLog.nodes).toHaveLength(2);
    expect(BigInt(page.auditLog.nodes[0].seq)).toBeGreaterThan(BigInt(page.auditLog.nodes[1].seq));
    const next = await gqlOk(
      api.url,
      TEST_ADMIN_KEY,
      `{ auditLog(tenantId: "${tenantId}", first: 500, after: "${page.auditLog.pageInfo.endCursor}") { nodes { seq } } }`,
    );
    expect(BigInt(next.auditLog.nodes[0].seq)).toBeLessThan(BigInt(page.auditLog.nodes[1].seq));

    expect(await verifyAuditChain(env.db)).toMatchObject({ ok: true });
    const v = auditVerify();
    expect(v.status).toBe(0);
    expect(v.out).toMatch(/audit log intact/);
  });

  it("keeps queue order and consecutive seqs with several writers racing (several API processes)", async () => {
    const queue = new AuditQueue({ redis: env.redis, keys: env.keys });
    const db2 = createDb({ url: env.databaseUrl, poolSize: 3 });
    const writers = [
      new AuditWriter({ db: env.db, redis: env.redis, keys: env.keys, batchSize: 17 }),
      new AuditWriter({ db: db2, redis: env.redis, keys: env.keys, batchSize: 23 }),
    ];
    try {
      await api.services.auditWriter.flush();
      const before = await env.db.auditLog.count();
      const N = 300;
      for (let i = 0; i < N; i += 50) {
        await queue.record(
          ...Array.from({ length: 50 }, (_, j) => ({
            actor: "test",
            action: "race",
            resource: `n:${i + j}`,
            decision: "OK" as const,
          })),
        );
      }
      await Promise.all([...writers.map((w) => w.flush()), api.services.auditWriter.flush()]);
      const rows = await env.db.auditLog.findMany({ where: { action: "race" }, orderBy: { seq: "asc" } });
      expect(rows.map((r) => r.resource)).toEqual(Array.from({ length: N }, (_, i) => `n:${i}`));
      expect(await env.db.auditLog.count()).toBe(before + N);
      expect(await env.redis.xlen(auditStreamKey(env.keys))).toBe(0);
      expect(await verifyAuditChain(env.db)).toMatchObject({ ok: true, rows: before + N });
    } finally {
      await db2.$disconnect();
    }
  });

  it("appends an event once even when a writer died between commit and dequeue", async () => {
    const queue = new AuditQueue({ redis: env.redis, keys: env.keys });
    await api.services.auditWriter.flush();
    await queue.record({ actor: "test", action: "once", resource: "r", decision: "OK" });
    const [[, fields]] = await env.redis.xrange(auditStreamKey(env.keys), "-", "+");
    await api.services.auditWriter.flush();
    await env.redis.xadd(auditStreamKey(env.keys), "*", ...fields); // the same event, re-delivered
    await api.services.auditWriter.flush();
    expect(await env.db.auditLog.count({ where: { action: "once" } })).toBe(1);
  });

  it.each([
    ["a NUL byte", "x\u0000y"],
    ["a lone surrogate", "x\ud800y"],
  ])("a denial whose id holds %s does not stop the audit log (issue 8, finding 1)", async (_what, poisonId) => {
    const made = await gqlOk(
      api.url,
      TEST_ADMIN_KEY,
      `mutation { createTenant(input: { name: "poisoner-${_what.length}", tierIds: ["tiny.t0"] }) { tenant { id } apiKey { secret } } }`,
    );
    const tenantKey: string = made.createTenant.apiKey.secret;
    // The poison: a TENANT names another tenant's id, so the denial is queued with that raw id.
    await gql(api.url, tenantKey, "query($id: ID!) { tenant(id: $id) { id } }", { id: poisonId });
    // A later, ordinary event must reach PostgreSQL through the running writer within seconds.
    const marker = `after-poison-${Math.random().toString(36).slice(2)}`;
    const after = await gqlOk(
      api.url,
      TEST_ADMIN_KEY,
      `mutation { createTenant(input: { name: "${marker}", tierIds: ["tiny.t0"] }) { tenant { id } } }`,
    );
    const afterTenantId: string = after.createTenant.tenant.id;
    await waitFor(
      "the later event in the log",
      async () => (await env.db.auditLog.count({ where: { tenantId: afterTenantId } })) > 0,
      { timeoutMs: 5000 },
    );
    await waitFor("the audit queue drained", async () => (await env.redis.xlen(auditStreamKey(env.keys))) === 0, {
      timeoutMs: 5000,
    });
    // The denial itself is stored, its id made storable (or, once the edge rejects such ids
    // before any work, never queued at all); nothing is stored raw.
    const denials = await env.db.auditLog.findMany({
      where: { tenantId: made.createTenant.tenant.id, action: "access.owner" },
    });
    for (const d of denials) {
      expect(d.resource).not.toContain("\u0000");
      expect(d.resource).not.toMatch(LONE_SURROGATE);
      expect(d.resource).toContain("x\\u");
    }
    expect(await verifyAuditChain(env.db)).toMatchObject({ ok: true });
    // The alert series live in the registry the API serves at /metrics.
    const metrics = await api.services.metrics.registry.metrics();
    expect(metrics).toMatch(/^lite_audit_queue_lag_seconds \d/m);
    expect(metrics).toMatch(/^lite_audit_dead_letter_length 0$/m);
  });

  it("detects a tampered row: audit:verify exits 1 naming the first bad seq", async () => {
    await api.services.auditWriter.flush();
    const victim = await env.db.auditLog.findFirstOrThrow({ where: { action: "race", resource: "n:7" } });
    await env.db.$executeRawUnsafe('ALTER TABLE "AuditLog" DISABLE RULE "AuditLog_no_update"');
    try {
      await env.db.$executeRaw`UPDATE "AuditLog" SET reason = 'nothing to see' WHERE seq = ${victim.seq}`;
    } finally {
      await env.db.$executeRawUnsafe('ALTER TABLE "AuditLog" ENABLE RULE "AuditLog_no_update"');
    }
    expect(await verifyAuditChain(env.db)).toMatchObject({ ok: false, badSeq: victim.seq });
    const v = auditVerify();
    expect(v.status).toBe(1);
    expect(v.out).toContain(`seq ${victim.seq}`);
  });
});
