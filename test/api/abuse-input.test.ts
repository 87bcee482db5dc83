/**
 * Issue 8, findings 3 and 7 (and the `seed` limit of 8): the sanitising edge. Every ID and
 * String argument, nested input fields and variables included, is checked before any
 * resolver work: NUL bytes and lone surrogates, ids over their length or off their shape,
 * strings over their documented maximum, DateTimes PostgreSQL cannot store, cursors that
 * decode to garbage. Each answers 400 BAD_USER_INPUT naming the field, with at most a
 * short escaped prefix of the value; nothing is admitted or audited with the raw value.
 */
import { encodeCursor } from "@lite/db";
import {
  codeOf,
  createTenant,
  CREATE_COMPLETION,
  gql,
  gqlOk,
  seedModel,
  TEST_ADMIN_KEY,
  type GqlResponse,
  type TenantWithKey,
  type TestEnv,
} from "@lite/testing";
import type { RunningApiServer } from "../../apps/api/src/server";
import { startStack, type TestStack } from "../support/stack";

let stack: TestStack;
let env: TestEnv;
let api: RunningApiServer;
let t: TenantWithKey;

beforeAll(async () => {
  stack = await startStack({ prepare: (e) => seedModel(e.db) });
  ({ env, api } = stack);
  t = await createTenant(env.db, { quota: { requestsPerMinute: 1 } });
});

afterAll(async () => {
  await stack?.close();
});

const NUL = "x\u0000y";
const SURROGATE = "x\ud800y";
const LOW_SURROGATE = "\udc00";

const refusal = (r: GqlResponse) => ({
  status: r.status,
  code: codeOf(r),
  field: r.errors?.[0]?.extensions?.field,
});

async function auditCount(): Promise<number> {
  await api.services.auditWriter.flush();
  return env.db.auditLog.count();
}

/** [name, role key, query, variables with the hostile value at `bad`, expected field]. */
type Case = [string, () => string, string, (bad: string) => Record<string, unknown>, string];
const ADMIN = () => TEST_ADMIN_KEY;
const TENANT = () => t.secret;
const CASES: Case[] = [
  ["completion", TENANT, "query($id: ID!) { completion(id: $id) { id } }", (v) => ({ id: v }), "id"],
  ["cancelCompletion", TENANT, "mutation($id: ID!) { cancelCompletion(id: $id) { id } }", (v) => ({ id: v }), "id"],
  ["tenant", TENANT, "query($id: ID!) { tenant(id: $id) { id } }", (v) => ({ id: v }), "id"],
  [
    "invoice",
    TENANT,
    'query($t: ID!) { invoice(tenantId: $t, period: "2026-01") { total } }',
    (v) => ({ t: v }),
    "tenantId",
  ],
  ["invoice period", ADMIN, "query($p: String!) { invoices(period: $p) { total } }", (v) => ({ p: v }), "period"],
  ["revokeApiKey", TENANT, "mutation($id: ID!) { revokeApiKey(id: $id) { id } }", (v) => ({ id: v }), "id"],
  [
    "createApiKey",
    TENANT,
    "mutation($t: ID) { createApiKey(tenantId: $t, role: TENANT) { secret } }",
    (v) => ({ t: v }),
    "tenantId",
  ],
  ["rotateTenantKey", TENANT, "mutation($t: ID!) { rotateTenantKey(tenantId: $t) }", (v) => ({ t: v }), "tenantId"],
  ["destroyTenantKeys", TENANT, "mutation($t: ID!) { destroyTenantKeys(tenantId: $t) }", (v) => ({ t: v }), "tenantId"],
  [
    "grantTier",
    ADMIN,
    "mutation($t: ID!, $tier: ID!) { grantTier(tenantId: $t, tierId: $tier) { id } }",
    (v) => ({ t: t.tenantId, tier: v }),
    "tierId",
  ],
  [
    "revokeTier",
    ADMIN,
    'mutation($t: ID!) { revokeTier(tenantId: $t, tierId: "tiny.t0") { id } }',
    (v) => ({ t: v }),
    "tenantId",
  ],
  [
    "updateTenant",
    ADMIN,
    "mutation($id: ID!, $n: String) { updateTenant(id: $id, input: { name: $n }) { id } }",
    (v) => ({ id: t.tenantId, n: v }),
    "input.name",
  ],
  [
    "createTenant",
    ADMIN,
    "mutation($i: CreateTenantInput!) { createTenant(input: $i) { tenant { id } } }",
    (v) => ({ i: { name: "ok", tierIds: ["tiny.t0", v] } }),
    "input.tierIds.1",
  ],
  [
    "setPriceBook",
    ADMIN,
    "mutation($i: PriceBookInput!) { setPriceBook(input: $i) { id } }",
    (v) => ({
      i: {
        currency: "USD",
        effectiveFrom: "2030-01-01T00:00:00Z",
        prices: [{ meter: "INPUT_TOKENS", unit: v, unitPrice: "1" }],
      },
    }),
    "input.prices.0.unit",
  ],
  [
    "createCompletion",
    TENANT,
    CREATE_COMPLETION,
    (v) => ({ input: { prompt: v, maxTokens: 4, mode: "FAST" } }),
    "input.prompt",
  ],
];

describe("NUL bytes and lone surrogates", () => {
  it.each(CASES)("%s: 400 BAD_USER_INPUT naming the field, nothing audited", async (_n, key, query, vars, field) => {
    const before = await auditCount();
    for (const bad of [NUL, SURROGATE, LOW_SURROGATE]) {
      const r = await gql(api.url, key(), query, vars(bad));
      expect(refusal(r)).toEqual({ status: 400, code: "BAD_USER_INPUT", field });
      expect(r.errors?.[0]?.message).not.toContain(bad);
    }
    expect(await auditCount()).toBe(before);
  });

  it("in an inline literal too (the document's own \\u0000 escape)", async () => {
    const r = await gql(api.url, t.secret, 'query { tenant(id: "x\\u0000y") { id } }');
    expect(refusal(r)).toEqual({ status: 400, code: "BAD_USER_INPUT", field: "id" });
  });

  it("a refused createCompletion is not admitted (requestsPerMinute 1 still has its request)", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await gql(api.url, t.secret, CREATE_COMPLETION, { input: { prompt: NUL, maxTokens: 4, mode: "FAST" } });
      expect(codeOf(r)).toBe("BAD_USER_INPUT");
    }
    const ok = await gql(api.url, t.secret, CREATE_COMPLETION, {
      input: { prompt: "hello", maxTokens: 4, mode: "FAST" },
    });
    expect(ok.errors).toBeUndefined();
  });
});

describe("ids: a maximum length and a shape; messages echo a short escaped prefix only", () => {
  it("a 150 KB id aliased 20 times: one small 400, no NOT_FOUND echo", async () => {
    const huge = "cmp_" + "a".repeat(150_000);
    const aliases = Array.from({ length: 20 }, (_, i) => `a${i}: completion(id: $x) { id }`).join(" ");
    const r = await gql(api.url, t.secret, `query($x: ID!) { ${aliases} }`, { x: huge });
    expect(refusal(r)).toEqual({ status: 400, code: "BAD_USER_INPUT", field: "id" });
    expect(JSON.stringify(r.errors).length).toBeLessThan(1000);
  });

  it.each([
    ["a space", "ten_a b"],
    ["a quote", 'ten_a"b'],
    ["the wrong prefix", "cmp_0123456789abcdefghjkmnpqrs"],
    ["no prefix", "0123456789"],
    ["129 characters", "ten_" + "a".repeat(125)],
  ])("tenant(id) with %s is BAD_USER_INPUT", async (_n, id) => {
    const r = await gql(api.url, TEST_ADMIN_KEY, "query($id: ID!) { tenant(id: $id) { id } }", { id });
    expect(refusal(r)).toEqual({ status: 400, code: "BAD_USER_INPUT", field: "id" });
  });

  it("a well-shaped missing id is still NOT_FOUND, and a tier id keeps its manifest shape", async () => {
    const r = await gql(api.url, TEST_ADMIN_KEY, "query($id: ID!) { tenant(id: $id) { id } }", { id: "ten_missing" });
    expect([r.status, codeOf(r)]).toEqual([200, "NOT_FOUND"]);
    const g = await gql(
      api.url,
      TEST_ADMIN_KEY,
      'mutation($t: ID!) { grantTier(tenantId: $t, tierId: "nope.t9") { id } }',
      {
        t: t.tenantId,
      },
    );
    expect(codeOf(g)).toBe("NOT_FOUND");
  });

  it("the message quotes at most 32 characters of the value, JSON-escaped", async () => {
    const r = await gql(api.url, TEST_ADMIN_KEY, "query($id: ID!) { tenant(id: $id) { id } }", {
      id: "ten_\u0000" + "z".repeat(5000),
    });
    const message = r.errors?.[0]?.message ?? "";
    expect(message).toContain("\\u0000");
    expect(message).not.toContain("\u0000");
    expect(message.length).toBeLessThan(200);
  });
});

describe("strings: documented maxima", () => {
  it.each([
    ["seed over 128 characters", CREATE_COMPLETION, { input: { prompt: "hi", seed: "1".repeat(129) } }, "input.seed"],
    [
      "a tenant name over 256 characters",
      "mutation($i: CreateTenantInput!) { createTenant(input: $i) { tenant { id } } }",
      { i: { name: "n".repeat(257) } },
      "input.name",
    ],
    [
      "a period over 16 characters",
      "query($p: String!) { invoices(period: $p) { total } }",
      { p: "2".repeat(17) },
      "period",
    ],
  ])("%s", async (_n, query, variables, field) => {
    const key = query.includes("createCompletion") ? t.secret : TEST_ADMIN_KEY;
    expect(refusal(await gql(api.url, key, query, variables))).toEqual({ status: 400, code: "BAD_USER_INPUT", field });
  });

  it("a seed of 128 characters is accepted", async () => {
    const u = await createTenant(env.db);
    const r = await gqlOk(api.url, u.secret, CREATE_COMPLETION, {
      input: { prompt: "hi", maxTokens: 2, seed: "7".repeat(128) },
    });
    expect(r.createCompletion.seed).toBe("7".repeat(128));
  });
});

describe("DateTime within PostgreSQL's years 0001–9999", () => {
  const USAGE =
    "query($t: ID!, $from: DateTime!, $to: DateTime!) { usage(tenantId: $t, from: $from, to: $to) { quantity } }";
  it.each([
    ["year 0000", "0000-06-01T00:00:00Z", "0000-06-02T00:00:00Z", "from"],
    ["year 10000 through an offset", "9999-12-31T00:00:00Z", "9999-12-31T23:00:00-05:00", "to"],
  ])("usage with %s is BAD_USER_INPUT naming the variable", async (_n, from, to, field) => {
    const r = await gql(api.url, TEST_ADMIN_KEY, USAGE, { t: t.tenantId, from, to });
    expect(refusal(r)).toEqual({ status: 400, code: "BAD_USER_INPUT", field });
  });

  it("setPriceBook effectiveFrom year 0000 is BAD_USER_INPUT", async () => {
    const r = await gql(api.url, TEST_ADMIN_KEY, "mutation($i: PriceBookInput!) { setPriceBook(input: $i) { id } }", {
      i: {
        currency: "USD",
        effectiveFrom: "0000-01-01T00:00:00Z",
        prices: [{ meter: "INPUT_TOKENS", unit: "1 token", unitPrice: "1" }],
      },
    });
    expect(refusal(r)).toEqual({ status: 400, code: "BAD_USER_INPUT", field: "i.effectiveFrom" });
  });

  it.each([
    ["0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z"],
    ["9999-12-30T00:00:00Z", "9999-12-31T23:59:59.999Z"],
  ])("the extremes PostgreSQL stores are accepted: %s", async (from, to) => {
    const r = await gql(api.url, TEST_ADMIN_KEY, USAGE, { t: t.tenantId, from, to });
    expect(r.errors).toBeUndefined();
  });
});

describe("cursors", () => {
  it.each([
    [
      "completions, a cursor decoding to NUL",
      (t) => t.secret,
      "query($c: String) { completions(after: $c) { nodes { id } } }",
      encodeCursor("\u0000"),
    ],
    [
      "tenants, a cursor decoding to NUL",
      () => TEST_ADMIN_KEY,
      "query($c: String) { tenants(after: $c) { nodes { id } } }",
      encodeCursor("ten_\u0000"),
    ],
    [
      "auditLog, a cursor above the int8 range",
      () => TEST_ADMIN_KEY,
      "query($c: String) { auditLog(after: $c) { nodes { seq } } }",
      encodeCursor("99999999999999999999"),
    ],
  ] as [string, (t: TenantWithKey) => string, string, string][])("%s is BAD_USER_INPUT", async (_n, key, query, c) => {
    const r = await gql(api.url, key(t), query, { c });
    expect(refusal(r)).toEqual({ status: 400, code: "BAD_USER_INPUT", field: "after" });
  });
});
