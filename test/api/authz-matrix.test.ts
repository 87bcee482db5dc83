/**
 * Every role against every root field of the contract (table-driven), then every
 * tenant-scoped object named by another tenant: NOT_FOUND exactly as for a missing id.
 */
import { newId } from "@lite/core";
import {
  codeOf,
  createKey,
  createTenant,
  gql,
  seedModel,
  TEST_ADMIN_KEY,
  wsConnect,
  type GqlResponse,
  type TenantWithKey,
  type TestEnv,
} from "@lite/testing";
import type { RunningApiServer } from "../../apps/api/src/server";
import { startStack, type TestStack } from "../support/stack";
import { CONTRACT_ROLES, type Role } from "./role-table";
import type { Client } from "graphql-ws";

let stack: TestStack;
let env: TestEnv;
let api: RunningApiServer;
let keys: Record<Role, string>;
let A: TenantWithKey;
let B: TenantWithKey;
let C: TenantWithKey;
let cmpA: string;
let cmpB: string;

async function insertCompletion(tenantId: string): Promise<string> {
  const id = newId("completion");
  await env.db.completion.create({
    data: {
      id,
      tenantId,
      modelId: "tiny",
      mode: "FAST",
      tierSet: ["tiny.t0"],
      seed: "1",
      prompt: "p",
      promptTokens: 1,
      maxTokens: 4,
    },
  });
  return id;
}

beforeAll(async () => {
  stack = await startStack({ prepare: (e) => seedModel(e.db) });
  ({ env, api } = stack);
  A = await createTenant(env.db, { name: "tenant-a" });
  B = await createTenant(env.db, { name: "tenant-b" });
  C = await createTenant(env.db, { name: "tenant-c" });
  keys = { ADMIN: TEST_ADMIN_KEY, FINANCE: (await createKey(env.db, "FINANCE")).secret, TENANT: A.secret };
  cmpA = await insertCompletion(A.tenantId);
  cmpB = await insertCompletion(B.tenantId);
});

afterAll(async () => {
  await stack?.close();
});

interface Op {
  field: string;
  query: string;
  /** arguments naming the caller's own objects (tenant A's for TENANT and for operators) */
  vars: (role: Role) => Promise<Record<string, unknown>> | Record<string, unknown>;
  /** what an allowed role gets: null = data without errors, else this error code */
  allowed: null | string;
}

const T = () => A.tenantId;
const OPS: Op[] = [
  { field: "Query.me", query: "{ me { role apiKeyId tenant { id } } }", vars: () => ({}), allowed: null },
  {
    field: "Query.priceBook",
    query: "{ priceBook { id currency prices { meter unitPrice } } }",
    vars: () => ({}),
    allowed: null,
  },
  { field: "Query.models", query: "{ models { id tiers { id } } }", vars: () => ({}), allowed: null },
  { field: "Query.tiers", query: "{ tiers { id } }", vars: () => ({}), allowed: null },
  {
    field: "Query.tenant",
    query: "query($id: ID!) { tenant(id: $id) { id name quota { hotMemoryBytes } tiers { id } apiKeys { id } } }",
    vars: () => ({ id: T() }),
    allowed: null,
  },
  { field: "Query.tenants", query: "{ tenants { totalCount nodes { id } } }", vars: () => ({}), allowed: null },
  {
    field: "Query.completion",
    query: "query($id: ID!) { completion(id: $id) { id } }",
    vars: () => ({ id: cmpA }),
    allowed: null,
  },
  { field: "Query.completions", query: "{ completions { nodes { id } } }", vars: () => ({}), allowed: null },
  {
    field: "Query.usage",
    query:
      'query($t: ID!) { usage(tenantId: $t, from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z") { start quantity } }',
    vars: () => ({ t: T() }),
    allowed: null,
  },
  {
    field: "Query.invoice",
    query: 'query($t: ID!) { invoice(tenantId: $t, period: "2026-01") { total status lines { amount } } }',
    vars: () => ({ t: T() }),
    allowed: null,
  },
  {
    field: "Query.invoices",
    query: '{ invoices(period: "2026-01") { tenantId total status } }',
    vars: () => ({}),
    allowed: null,
  },
  {
    field: "Query.auditLog",
    query: "{ auditLog(first: 5) { nodes { seq hash } pageInfo { hasNextPage } } }",
    vars: () => ({}),
    allowed: null,
  },
  {
    field: "Mutation.createTenant",
    query: "mutation($n: String!) { createTenant(input: { name: $n }) { tenant { id } apiKey { secret } } }",
    vars: () => ({ n: `made-${newId("tenant")}` }),
    allowed: null,
  },
  {
    field: "Mutation.updateTenant",
    query: "mutation($id: ID!) { updateTenant(id: $id, input: { weight: 2 }) { weight } }",
    vars: () => ({ id: C.tenantId }),
    allowed: null,
  },
  {
    field: "Mutation.setQuota",
    query:
      "mutation($id: ID!) { setQuota(tenantId: $id, input: { requestsPerMinute: 100 }) { quota { requestsPerMinute } } }",
    vars: () => ({ id: C.tenantId }),
    allowed: null,
  },
  {
    field: "Mutation.grantTier",
    query: 'mutation($id: ID!) { grantTier(tenantId: $id, tierId: "tiny.t3") { id } }',
    vars: () => ({ id: C.tenantId }),
    allowed: null,
  },
  {
    field: "Mutation.revokeTier",
    query: 'mutation($id: ID!) { revokeTier(tenantId: $id, tierId: "tiny.t3") { id } }',
    vars: () => ({ id: C.tenantId }),
    allowed: null,
  },
  {
    field: "Mutation.suspendTenant",
    query: "mutation($id: ID!) { suspendTenant(id: $id, suspended: false) { suspended } }",
    vars: () => ({ id: C.tenantId }),
    allowed: null,
  },
  {
    field: "Mutation.createApiKey",
    query:
      "mutation($t: ID, $r: Role!) { createApiKey(tenantId: $t, role: $r) { secret apiKey { id role tenantId } } }",
    vars: (role) => (role === "TENANT" ? { t: null, r: "TENANT" } : { t: T(), r: "TENANT" }),
    allowed: null,
  },
  {
    field: "Mutation.revokeApiKey",
    query: "mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }",
    vars: async () => ({ id: (await createKey(env.db, "TENANT", A.tenantId)).apiKeyId }),
    allowed: null,
  },
  {
    field: "Mutation.setPriceBook",
    query: `mutation { setPriceBook(input: { currency: "EUR", effectiveFrom: "2030-01-01T00:00:00Z",
      prices: [{ meter: OUTPUT_TOKENS, unitPrice: "0.000002", unit: "1 token" }] }) { id prices { unitPrice } } }`,
    vars: () => ({}),
    allowed: null,
  },
  {
    field: "Mutation.createPrivateTier",
    query:
      'mutation($t: ID!) { createPrivateTier(input: { tenantId: $t, name: "mine", baseTierId: "tiny.t0" }) { id } }',
    vars: () => ({ t: T() }),
    allowed: "NOT_IMPLEMENTED",
  },
  {
    field: "Mutation.rotateTenantKey",
    query: "mutation($t: ID!) { rotateTenantKey(tenantId: $t) }",
    vars: () => ({ t: T() }),
    allowed: "NOT_IMPLEMENTED",
  },
  {
    field: "Mutation.destroyTenantKeys",
    query: "mutation($t: ID!) { destroyTenantKeys(tenantId: $t) }",
    vars: () => ({ t: T() }),
    allowed: "NOT_IMPLEMENTED",
  },
  {
    field: "Mutation.createCompletion",
    query: 'mutation { createCompletion(input: { prompt: "hello", maxTokens: 4, mode: FAST }) { id status } }',
    vars: () => ({}),
    allowed: null,
  },
  {
    field: "Mutation.cancelCompletion",
    query: "mutation($id: ID!) { cancelCompletion(id: $id) { id } }",
    vars: async () => ({ id: await insertCompletion(A.tenantId) }),
    allowed: null,
  },
];

const SUBSCRIPTIONS: Op[] = [
  // cmpA is queued and no worker runs: an allowed subscriber just waits for tokens.
  {
    field: "Subscription.completionTokens",
    query: "subscription($id: ID!) { completionTokens(id: $id) { index } }",
    vars: () => ({ id: cmpA }),
    allowed: "PENDING",
  },
  {
    field: "Subscription.tenantMetrics",
    query: "subscription($t: ID!) { tenantMetrics(tenantId: $t) { requests } }",
    vars: () => ({ t: T() }),
    allowed: null,
  },
];

const STATUS: Record<string, number> = { NOT_IMPLEMENTED: 501, FORBIDDEN: 403, NOT_FOUND: 200 };

/** First answer of a subscription: its errors (or data), or code PENDING when nothing came within waitMs. */
async function subscribeOnce(
  client: Client,
  query: string,
  variables: Record<string, unknown>,
  waitMs = 1500,
): Promise<{ code?: string; data?: unknown }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      dispose();
      resolve({ code: "PENDING" });
    }, waitMs);
    const done = (v: { code?: string; data?: unknown }) => {
      clearTimeout(timer);
      resolve(v);
    };
    const dispose = client.subscribe(
      { query, variables },
      {
        next: (msg) => {
          dispose();
          done(msg.errors?.length ? { code: msg.errors[0].extensions?.code as string } : { data: msg.data });
        },
        error: (err) => {
          clearTimeout(timer);
          const list = Array.isArray(err) ? err : [];
          if (list.length) resolve({ code: list[0].extensions?.code as string });
          else reject(err);
        },
        complete: () => done({}),
      },
    );
  });
}

describe("role matrix over HTTP", () => {
  it("covers every query and mutation of the contract", () => {
    const listed = new Set([...OPS, ...SUBSCRIPTIONS].map((o) => o.field));
    expect([...listed].sort()).toEqual(Object.keys(CONTRACT_ROLES).sort());
  });

  const cases = OPS.flatMap((op) =>
    (["ADMIN", "FINANCE", "TENANT"] as Role[]).map((role) => [op.field, role, op] as const),
  );
  it.each(cases)("%s as %s", async (_field, role, op) => {
    const allowed = CONTRACT_ROLES[op.field].includes(role);
    const r = await gql(api.url, keys[role], op.query, await op.vars(role));
    if (allowed) {
      expect({ field: op.field, code: codeOf(r) ?? null }).toEqual({ field: op.field, code: op.allowed });
      expect(r.status).toBe(op.allowed ? STATUS[op.allowed] : 200);
    } else {
      expect({ field: op.field, code: codeOf(r) }).toEqual({ field: op.field, code: "FORBIDDEN" });
      expect(r.status).toBe(403);
    }
  });

  it("refuses a forbidden role before looking at arguments (ids that do not exist)", async () => {
    const r1 = await gql(api.url, keys.FINANCE, 'mutation { cancelCompletion(id: "cmp_nope") { id } }');
    expect([r1.status, codeOf(r1)]).toEqual([403, "FORBIDDEN"]);
    const r2 = await gql(api.url, keys.TENANT, 'mutation { suspendTenant(id: "ten_nope", suspended: true) { id } }');
    expect([r2.status, codeOf(r2)]).toEqual([403, "FORBIDDEN"]);
    const r3 = await gql(api.url, keys.ADMIN, 'mutation { createCompletion(input: { prompt: "x" }) { id } }');
    expect([r3.status, codeOf(r3)]).toEqual([403, "FORBIDDEN"]);
  });

  it("audits role denials", async () => {
    await gql(api.url, keys.TENANT, "{ auditLog { nodes { seq } } }");
    await api.services.auditWriter.flush();
    const denial = await env.db.auditLog.findFirst({
      where: { action: "access.role", resource: "field:Query.auditLog", decision: "DENY", tenantId: A.tenantId },
    });
    expect(denial).toMatchObject({ actor: `tenant:${A.apiKeyId}`, reason: "ROLE TENANT" });
  });
});

describe("role matrix over graphql-ws", () => {
  const cases = SUBSCRIPTIONS.flatMap((op) =>
    (["ADMIN", "FINANCE", "TENANT"] as Role[]).map((role) => [op.field, role, op] as const),
  );
  it.each(cases)("%s as %s", async (_field, role, op) => {
    const conn = await wsConnect(api.wsUrl, { authorization: `Bearer ${keys[role]}` });
    if (conn.outcome !== "open") throw new Error(`closed ${conn.code}`);
    try {
      const got = await subscribeOnce(conn.client, op.query, await op.vars(role));
      const allowed = CONTRACT_ROLES[op.field].includes(role);
      expect(got.code ?? null).toBe(allowed ? op.allowed : "FORBIDDEN");
      if (allowed && op.allowed === null) expect(got.data).toBeDefined();
    } finally {
      await conn.client.dispose();
    }
  });
});

describe("another tenant's objects answer NOT_FOUND, exactly like missing ones", () => {
  type Probe = [
    name: string,
    query: string,
    other: () => Record<string, unknown>,
    missing: () => Record<string, unknown>,
  ];
  const missingTenant = () => newId("tenant");
  const probes: Probe[] = [
    [
      "tenant",
      "query($id: ID!) { tenant(id: $id) { id } }",
      () => ({ id: B.tenantId }),
      () => ({ id: missingTenant() }),
    ],
    [
      "Tenant.metrics",
      "query($id: ID!) { tenant(id: $id) { metrics { requests outputTokens } } }",
      () => ({ id: B.tenantId }),
      () => ({ id: missingTenant() }),
    ],
    [
      "usage",
      'query($t: ID!) { usage(tenantId: $t, from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z") { quantity } }',
      () => ({ t: B.tenantId }),
      () => ({ t: missingTenant() }),
    ],
    [
      "invoice",
      'query($t: ID!) { invoice(tenantId: $t, period: "2026-01") { total } }',
      () => ({ t: B.tenantId }),
      () => ({ t: missingTenant() }),
    ],
    [
      "completion",
      "query($id: ID!) { completion(id: $id) { id } }",
      () => ({ id: cmpB }),
      () => ({ id: newId("completion") }),
    ],
    [
      "cancelCompletion",
      "mutation($id: ID!) { cancelCompletion(id: $id) { id } }",
      () => ({ id: cmpB }),
      () => ({ id: newId("completion") }),
    ],
    [
      "createApiKey",
      "mutation($t: ID) { createApiKey(tenantId: $t, role: TENANT) { secret } }",
      () => ({ t: B.tenantId }),
      () => ({ t: missingTenant() }),
    ],
    [
      "revokeApiKey",
      "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
      () => ({ id: B.apiKeyId }),
      () => ({ id: newId("apiKey") }),
    ],
    [
      "createPrivateTier",
      'mutation($t: ID!) { createPrivateTier(input: { tenantId: $t, name: "x", baseTierId: "tiny.t0" }) { id } }',
      () => ({ t: B.tenantId }),
      () => ({ t: missingTenant() }),
    ],
    [
      "rotateTenantKey",
      "mutation($t: ID!) { rotateTenantKey(tenantId: $t) }",
      () => ({ t: B.tenantId }),
      () => ({ t: missingTenant() }),
    ],
    [
      "destroyTenantKeys",
      "mutation($t: ID!) { destroyTenantKeys(tenantId: $t) }",
      () => ({ t: B.tenantId }),
      () => ({ t: missingTenant() }),
    ],
  ];

  const shape = (r: GqlResponse) => ({
    status: r.status,
    code: codeOf(r),
    message: r.errors?.[0]?.message.replace(/\b[a-z]+_[0-9a-z]{26}\b/g, "<id>"),
    data: r.data === null ? null : Object.fromEntries(Object.entries(r.data ?? {}).map(([k, v]) => [k, v])),
  });

  it.each(probes)("%s", async (_name, query, other, missing) => {
    const otherRes = await gql(api.url, A.secret, query, other());
    const missingRes = await gql(api.url, A.secret, query, missing());
    expect(shape(otherRes).code).toBe("NOT_FOUND");
    expect(shape(otherRes)).toEqual(shape(missingRes));
    // and the owner itself gets past ownership
    const own = await gql(api.url, B.secret, query, other());
    expect(codeOf(own)).not.toBe("NOT_FOUND");
  });

  it("subscriptions: completionTokens and tenantMetrics of another tenant", async () => {
    const conn = await wsConnect(api.wsUrl, { authorization: A.secret });
    if (conn.outcome !== "open") throw new Error(`closed ${conn.code}`);
    try {
      expect(
        (
          await subscribeOnce(conn.client, "subscription($id: ID!) { completionTokens(id: $id) { index } }", {
            id: cmpB,
          })
        ).code,
      ).toBe("NOT_FOUND");
      expect(
        (
          await subscribeOnce(conn.client, "subscription($t: ID!) { tenantMetrics(tenantId: $t) { requests } }", {
            t: B.tenantId,
          })
        ).code,
      ).toBe("NOT_FOUND");
    } finally {
      await conn.client.dispose();
    }
  });

  it("tiers: a TENANT sees its granted tiers only (no restricted tier without a grant)", async () => {
    const r = await gql<{ tiers: Array<{ id: string }>; models: Array<{ tiers: Array<{ id: string }> }> }>(
      api.url,
      A.secret,
      "{ tiers { id } models { tiers { id } } }",
    );
    expect(r.data?.tiers.map((t) => t.id)).toEqual(["tiny.t0", "tiny.t1", "tiny.t2"]);
    expect(r.data?.models[0].tiers.map((t) => t.id)).toEqual(["tiny.t0", "tiny.t1", "tiny.t2"]);
    const admin = await gql<{ tiers: Array<{ id: string }> }>(api.url, TEST_ADMIN_KEY, "{ tiers { id restricted } }");
    expect(admin.data?.tiers.map((t) => t.id)).toEqual(["tiny.t0", "tiny.t1", "tiny.t2", "tiny.t3"]);
  });
});
