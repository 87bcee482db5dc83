/**
 * Authentication: keys, revocation and suspension across two API processes' worth of
 * servers (two in-process servers sharing PostgreSQL and Redis), HTTP and graphql-ws.
 */
import {
  codeOf,
  createKey,
  createTenant,
  gql,
  gqlOk,
  seedModel,
  TEST_ADMIN_KEY,
  type TestEnv,
  waitFor,
  wsConnect,
} from "@lite/testing";
import { hashApiKey } from "@lite/auth";
import type { RunningApiServer } from "../../apps/api/src/server";
import { startStack, type TestStack } from "../support/stack";

let stack: TestStack;
let env: TestEnv;
let api1: RunningApiServer;
let api2: RunningApiServer;

beforeAll(async () => {
  stack = await startStack({ prepare: (e) => seedModel(e.db) });
  ({ env, api: api1 } = stack);
  api2 = await stack.startApi();
});

afterAll(async () => {
  await stack?.close();
});

const ME = "{ me { role apiKeyId tenant { id } } }";

describe("API keys", () => {
  it("are shown once, ≥ 128 bits, stored only as a SHA-256 hash with a display prefix", async () => {
    const created = await gqlOk(
      api1.url,
      TEST_ADMIN_KEY,
      'mutation { createTenant(input: { name: "keys-a" }) { tenant { id } apiKey { secret apiKey { id prefix role tenantId } } } }',
    );
    const { secret, apiKey } = created.createTenant.apiKey;
    expect(secret).toMatch(/^lite_[0-9A-Za-z]{43}$/); // 43 base62 chars ≈ 256 bits
    expect(secret.startsWith(apiKey.prefix)).toBe(true);
    expect(apiKey.prefix.length).toBeLessThan(16);
    const row = await env.db.apiKey.findUniqueOrThrow({ where: { id: apiKey.id } });
    expect(row.hash).toBe(hashApiKey(secret));
    expect(JSON.stringify(row)).not.toContain(secret);
    const me = await gqlOk(api2.url, secret, ME);
    expect(me.me).toEqual({ role: "TENANT", apiKeyId: apiKey.id, tenant: { id: created.createTenant.tenant.id } });
  });

  it("stores the bootstrap admin key hashed, once, however many servers start", async () => {
    const rows = await env.db.apiKey.findMany({ where: { role: "ADMIN" } });
    expect(rows).toHaveLength(1);
    expect(rows[0].hash).toBe(hashApiKey(TEST_ADMIN_KEY));
    expect(rows[0].prefix).not.toContain(TEST_ADMIN_KEY.slice(0, 8));
  });

  it("answers 401 UNAUTHENTICATED for a missing or unknown key, accepting a bare key too", async () => {
    const none = await gql(api1.url, null, ME);
    expect([none.status, codeOf(none)]).toEqual([401, "UNAUTHENTICATED"]);
    const wrong = await gql(api1.url, "lite_notakeyatall000000000000000000000000000000", ME);
    expect([wrong.status, codeOf(wrong)]).toEqual([401, "UNAUTHENTICATED"]);
    const res = await fetch(api1.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: TEST_ADMIN_KEY },
      body: JSON.stringify({ query: ME }),
    });
    expect(res.status).toBe(200);
  });

  it("updates lastUsedAt, throttled rather than per request", async () => {
    const t = await createTenant(env.db);
    for (let i = 0; i < 5; i++) await gqlOk(api1.url, t.secret, ME);
    const row = await waitFor(
      "lastUsedAt set",
      async () => {
        const k = await env.db.apiKey.findUniqueOrThrow({ where: { id: t.apiKeyId } });
        return k.lastUsedAt !== null && k;
      },
      { timeoutMs: 2000, everyMs: 20 },
    );
    const first = row.lastUsedAt!.getTime();
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 5; i++) await gqlOk(api1.url, t.secret, ME);
    await new Promise((r) => setTimeout(r, 100));
    expect((await env.db.apiKey.findUniqueOrThrow({ where: { id: t.apiKeyId } })).lastUsedAt!.getTime()).toBe(first);
  });
});

describe("createApiKey rules", () => {
  it("TENANT: own tenant by default, role TENANT only", async () => {
    const t = await createTenant(env.db);
    const own = await gqlOk(
      api1.url,
      t.secret,
      "mutation { createApiKey(role: TENANT) { secret apiKey { tenantId role } } }",
    );
    expect(own.createApiKey.apiKey).toEqual({ tenantId: t.tenantId, role: "TENANT" });
    expect((await gqlOk(api1.url, own.createApiKey.secret, ME)).me.tenant.id).toBe(t.tenantId);
    for (const role of ["ADMIN", "FINANCE"]) {
      const r = await gql(api1.url, t.secret, `mutation { createApiKey(role: ${role}) { secret } }`);
      expect([r.status, codeOf(r)]).toEqual([403, "FORBIDDEN"]);
    }
  });

  it("ADMIN: TENANT keys need a tenantId, ADMIN and FINANCE keys need none", async () => {
    const t = await createTenant(env.db);
    const noTenant = await gql(api1.url, TEST_ADMIN_KEY, "mutation { createApiKey(role: TENANT) { secret } }");
    expect([noTenant.status, codeOf(noTenant), noTenant.errors?.[0].extensions?.field]).toEqual([
      400,
      "BAD_USER_INPUT",
      "tenantId",
    ]);
    const finWithTenant = await gql(
      api1.url,
      TEST_ADMIN_KEY,
      `mutation { createApiKey(tenantId: "${t.tenantId}", role: FINANCE) { secret } }`,
    );
    expect([finWithTenant.status, codeOf(finWithTenant)]).toEqual([400, "BAD_USER_INPUT"]);
    const fin = await gqlOk(
      api1.url,
      TEST_ADMIN_KEY,
      "mutation { createApiKey(role: FINANCE) { secret apiKey { role tenantId } } }",
    );
    expect(fin.createApiKey.apiKey).toEqual({ role: "FINANCE", tenantId: null });
    expect((await gqlOk(api2.url, fin.createApiKey.secret, ME)).me.role).toBe("FINANCE");
    const missing = await gql(
      api1.url,
      TEST_ADMIN_KEY,
      'mutation { createApiKey(tenantId: "ten_missing", role: TENANT) { secret } }',
    );
    expect(codeOf(missing)).toBe("NOT_FOUND");
  });
});

describe("revocation and suspension across two API servers", () => {
  it("a revoked key is refused by the other server within 1 s (HTTP), after being cached there", async () => {
    const t = await createTenant(env.db);
    const extra = await createKey(env.db, "TENANT", t.tenantId);
    await gqlOk(api2.url, extra.secret, ME); // cached on api2
    await gqlOk(api1.url, t.secret, `mutation { revokeApiKey(id: "${extra.apiKeyId}") { revokedAt } }`);
    const started = Date.now();
    await waitFor(
      "the revoked key refused on api2",
      async () => codeOf(await gql(api2.url, extra.secret, ME)) === "UNAUTHENTICATED",
      { timeoutMs: 1000, everyMs: 20 },
    );
    expect(Date.now() - started).toBeLessThan(1000);
    const r = await gql(api2.url, extra.secret, ME);
    expect([r.status, r.errors?.[0].extensions?.reason]).toEqual([401, "KEY_REVOKED"]);
    await waitFor(
      "the revocation audited once",
      async () => {
        await api1.services.auditWriter.flush();
        const where = { action: "apikey.revoke", resource: `apikey:${extra.apiKeyId}` };
        return (await env.db.auditLog.count({ where })) === 1;
      },
      { timeoutMs: 2000, everyMs: 20 },
    );
  });

  it("a suspended tenant's keys get 403 TENANT_SUSPENDED on the other server within 1 s, and work again after resume", async () => {
    const t = await createTenant(env.db);
    await gqlOk(api2.url, t.secret, ME);
    await gqlOk(
      api1.url,
      TEST_ADMIN_KEY,
      `mutation { suspendTenant(id: "${t.tenantId}", suspended: true) { suspended } }`,
    );
    await waitFor("suspension seen on api2", async () => codeOf(await gql(api2.url, t.secret, ME)) === "FORBIDDEN", {
      timeoutMs: 1000,
      everyMs: 20,
    });
    const r = await gql(api2.url, t.secret, ME);
    expect([r.status, codeOf(r), r.errors?.[0].extensions?.reason]).toEqual([403, "FORBIDDEN", "TENANT_SUSPENDED"]);
    await gqlOk(
      api1.url,
      TEST_ADMIN_KEY,
      `mutation { suspendTenant(id: "${t.tenantId}", suspended: false) { suspended } }`,
    );
    await waitFor("resumption seen on api2", async () => (await gql(api2.url, t.secret, ME)).status === 200, {
      timeoutMs: 1000,
      everyMs: 20,
    });
  });
});

describe("graphql-ws authentication", () => {
  it("accepts Bearer and bare keys in connection_init", async () => {
    const t = await createTenant(env.db);
    for (const authorization of [`Bearer ${t.secret}`, t.secret]) {
      const c = await wsConnect(api1.wsUrl, { authorization });
      expect(c.outcome).toBe("open");
      if (c.outcome === "open") await c.client.dispose();
    }
  });

  it("closes with 4401 for a missing or wrong key, 4403 for a suspended tenant", async () => {
    expect(await wsConnect(api1.wsUrl, {})).toEqual({ outcome: "closed", code: 4401 });
    expect(await wsConnect(api1.wsUrl, { authorization: "Bearer nope-nope-nope" })).toEqual({
      outcome: "closed",
      code: 4401,
    });
    const s = await createTenant(env.db, { suspended: true });
    expect(await wsConnect(api1.wsUrl, { authorization: `Bearer ${s.secret}` })).toEqual({
      outcome: "closed",
      code: 4403,
    });
  });

  it("a key revoked on one server is refused (4401) by the other within 1 s, and its open socket is closed", async () => {
    const t = await createTenant(env.db);
    const extra = await createKey(env.db, "TENANT", t.tenantId);
    const open = await wsConnect(api2.wsUrl, { authorization: extra.secret });
    if (open.outcome !== "open") throw new Error("expected an open socket");
    let closedWith: number | undefined;
    open.client.on("closed", (e) => {
      closedWith = (e as { code: number }).code;
    });
    await gqlOk(api1.url, TEST_ADMIN_KEY, `mutation { revokeApiKey(id: "${extra.apiKeyId}") { id } }`);
    const started = Date.now();
    await waitFor(
      "the revoked key refused on api2's graphql-ws",
      async () => (await wsConnect(api2.wsUrl, { authorization: extra.secret })).outcome === "closed",
      { timeoutMs: 1000, everyMs: 20 },
    );
    expect(Date.now() - started).toBeLessThan(1000);
    await waitFor("the open socket closed with 4401", () => closedWith === 4401, { timeoutMs: 1000, everyMs: 20 });
    await open.client.dispose();
  });

  it("a tenant suspended on one server is refused (4403) by the other within 1 s", async () => {
    const t = await createTenant(env.db);
    const first = await wsConnect(api2.wsUrl, { authorization: t.secret });
    if (first.outcome === "open") await first.client.dispose();
    await gqlOk(api1.url, TEST_ADMIN_KEY, `mutation { suspendTenant(id: "${t.tenantId}", suspended: true) { id } }`);
    let last: unknown;
    await waitFor(
      "suspension seen on api2's graphql-ws",
      async () => {
        last = await wsConnect(api2.wsUrl, { authorization: t.secret });
        return (last as { outcome: string }).outcome === "closed";
      },
      { timeoutMs: 1000, everyMs: 20 },
    );
    expect(last).toEqual({ outcome: "closed", code: 4403 });
  });
});
