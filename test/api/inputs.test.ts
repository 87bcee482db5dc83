/** Bad input for each input type, and the limits that must still be accepted. */
import {
  codeOf,
  createTenant,
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
const MAX_PROMPT_BYTES = 2048;

beforeAll(async () => {
  stack = await startStack({ prepare: (e) => seedModel(e.db), apiEnv: { MAX_PROMPT_BYTES: String(MAX_PROMPT_BYTES) } });
  ({ env, api } = stack);
  t = await createTenant(env.db);
});

afterAll(async () => {
  await stack?.close();
});

const badInput = (r: GqlResponse) => ({ status: r.status, code: codeOf(r), field: r.errors?.[0]?.extensions?.field });
const SET_QUOTA =
  "mutation($t: ID!, $q: QuotaInput!) { setQuota(tenantId: $t, input: $q) { quota { hotMemoryBytes requestsPerMinute } } }";
const CREATE =
  "mutation($i: CreateTenantInput!) { createTenant(input: $i) { tenant { id weight tiers { id } quota { hotMemoryBytes warmMemoryBytes kvCacheBytes prefetchBytesPerSecond maxOutstandingTokens maxConcurrentRequests requestsPerMinute tokensPerMinute overQuotaPolicy } } } }";
let n = 0;
const uniqueName = () => `inputs-${Date.now()}-${n++}`;

describe("quota", () => {
  it.each([
    [{ requestsPerMinute: 0 }, "input.requestsPerMinute"],
    [{ maxConcurrentRequests: -1 }, "input.maxConcurrentRequests"],
    [{ hotMemoryBytes: "0" }, "input.hotMemoryBytes"],
    [{ kvCacheBytes: "-5" }, "input.kvCacheBytes"],
    [{ warmMemoryBytes: "9223372036854775808" }, "input.warmMemoryBytes"],
  ])("refuses %j", async (q, field) => {
    expect(badInput(await gql(api.url, TEST_ADMIN_KEY, SET_QUOTA, { t: t.tenantId, q }))).toEqual({
      status: 400,
      code: "BAD_USER_INPUT",
      field,
    });
  });

  it("accepts BigInt 2^53 + 1 exactly and keeps the other fields", async () => {
    const r = await gqlOk(api.url, TEST_ADMIN_KEY, SET_QUOTA, {
      t: t.tenantId,
      q: { hotMemoryBytes: "9007199254740993", requestsPerMinute: 7 },
    });
    expect(r.setQuota.quota).toEqual({ hotMemoryBytes: "9007199254740993", requestsPerMinute: 7 });
  });

  it("refuses a malformed BigInt: as a variable BAD_USER_INPUT naming the field, inline GRAPHQL_VALIDATION_FAILED", async () => {
    const asVar = await gql(api.url, TEST_ADMIN_KEY, SET_QUOTA, { t: t.tenantId, q: { hotMemoryBytes: "12abc" } });
    expect(badInput(asVar)).toEqual({ status: 400, code: "BAD_USER_INPUT", field: "q.hotMemoryBytes" });
    const inline = await gql(
      api.url,
      TEST_ADMIN_KEY,
      `mutation { setQuota(tenantId: "${t.tenantId}", input: { hotMemoryBytes: "12abc" }) { id } }`,
    );
    expect([inline.status, codeOf(inline)]).toEqual([400, "GRAPHQL_VALIDATION_FAILED"]);
  });

  it("gives a new tenant RUNTIME.md's default quota", async () => {
    const r = await gqlOk(api.url, TEST_ADMIN_KEY, CREATE, { i: { name: uniqueName() } });
    expect(r.createTenant.tenant.quota).toEqual({
      hotMemoryBytes: String(256 * 1024 * 1024),
      warmMemoryBytes: String(1024 * 1024 * 1024),
      kvCacheBytes: String(64 * 1024 * 1024),
      prefetchBytesPerSecond: String(256 * 1024 * 1024),
      maxOutstandingTokens: 65536,
      maxConcurrentRequests: 32,
      requestsPerMinute: 600,
      tokensPerMinute: 200000,
      overQuotaPolicy: "REJECT",
    });
  });
});

describe("weight", () => {
  it.each([0, 1001, -3])("refuses %i on create and update", async (weight) => {
    expect(badInput(await gql(api.url, TEST_ADMIN_KEY, CREATE, { i: { name: uniqueName(), weight } }))).toEqual({
      status: 400,
      code: "BAD_USER_INPUT",
      field: "input.weight",
    });
    const upd = await gql(
      api.url,
      TEST_ADMIN_KEY,
      "mutation($id: ID!, $w: Int) { updateTenant(id: $id, input: { weight: $w }) { weight } }",
      { id: t.tenantId, w: weight },
    );
    expect(badInput(upd)).toEqual({ status: 400, code: "BAD_USER_INPUT", field: "input.weight" });
  });

  it.each([1, 1000])("accepts the limit %i", async (weight) => {
    expect(
      (await gqlOk(api.url, TEST_ADMIN_KEY, CREATE, { i: { name: uniqueName(), weight } })).createTenant.tenant.weight,
    ).toBe(weight);
    const upd = await gqlOk(
      api.url,
      TEST_ADMIN_KEY,
      "mutation($id: ID!, $w: Int) { updateTenant(id: $id, input: { weight: $w }) { weight } }",
      { id: t.tenantId, w: weight },
    );
    expect(upd.updateTenant.weight).toBe(weight);
  });
});

describe("tiers and names", () => {
  it("createTenant without tierIds grants every public non-restricted tier; with tierIds exactly those", async () => {
    const all = await gqlOk(api.url, TEST_ADMIN_KEY, CREATE, { i: { name: uniqueName() } });
    expect(all.createTenant.tenant.tiers.map((x: { id: string }) => x.id)).toEqual(["tiny.t0", "tiny.t1", "tiny.t2"]);
    const some = await gqlOk(api.url, TEST_ADMIN_KEY, CREATE, {
      i: { name: uniqueName(), tierIds: ["tiny.t0", "tiny.t3"] },
    });
    expect(some.createTenant.tenant.tiers.map((x: { id: string }) => x.id)).toEqual(["tiny.t0", "tiny.t3"]);
  });

  it("refuses an unknown tier: BAD_USER_INPUT in createTenant, NOT_FOUND in grantTier", async () => {
    expect(
      badInput(
        await gql(api.url, TEST_ADMIN_KEY, CREATE, { i: { name: uniqueName(), tierIds: ["tiny.t0", "nope.t9"] } }),
      ),
    ).toEqual({
      status: 400,
      code: "BAD_USER_INPUT",
      field: "input.tierIds",
    });
    const g = await gql(
      api.url,
      TEST_ADMIN_KEY,
      `mutation { grantTier(tenantId: "${t.tenantId}", tierId: "nope.t9") { id } }`,
    );
    expect([g.status, codeOf(g), g.data]).toEqual([200, "NOT_FOUND", null]);
  });

  it("refuses a duplicate or empty tenant name", async () => {
    const name = uniqueName();
    await gqlOk(api.url, TEST_ADMIN_KEY, CREATE, { i: { name } });
    expect(badInput(await gql(api.url, TEST_ADMIN_KEY, CREATE, { i: { name } }))).toEqual({
      status: 400,
      code: "BAD_USER_INPUT",
      field: "input.name",
    });
    expect(badInput(await gql(api.url, TEST_ADMIN_KEY, CREATE, { i: { name: "  " } }))).toEqual({
      status: 400,
      code: "BAD_USER_INPUT",
      field: "input.name",
    });
  });
});

describe("pagination", () => {
  it.each([
    ["tenants", "query($f: Int) { tenants(first: $f) { totalCount } }"],
    ["auditLog", "query($f: Int) { auditLog(first: $f) { nodes { seq } } }"],
  ])("%s: first 0 and 501 refused, 1 and 500 accepted", async (_name, query) => {
    for (const f of [0, 501, -1])
      expect(badInput(await gql(api.url, TEST_ADMIN_KEY, query, { f }))).toEqual({
        status: 400,
        code: "BAD_USER_INPUT",
        field: "first",
      });
    for (const f of [1, 500]) await gqlOk(api.url, TEST_ADMIN_KEY, query, { f });
  });

  it("refuses a malformed cursor", async () => {
    expect(badInput(await gql(api.url, TEST_ADMIN_KEY, '{ tenants(after: "???") { totalCount } }'))).toEqual({
      status: 400,
      code: "BAD_USER_INPUT",
      field: "after",
    });
  });
});

describe("DateTime and usage ranges", () => {
  const USAGE =
    "query($t: ID!, $from: DateTime!, $to: DateTime!, $g: Granularity) { usage(tenantId: $t, from: $from, to: $to, granularity: $g) { start } }";
  it("refuses a malformed DateTime as a variable (naming it) and inline", async () => {
    const asVar = await gql(api.url, TEST_ADMIN_KEY, USAGE, {
      t: t.tenantId,
      from: "2026-02-30T00:00:00Z",
      to: "2026-03-02T00:00:00Z",
    });
    expect(badInput(asVar)).toEqual({ status: 400, code: "BAD_USER_INPUT", field: "from" });
    const inline = await gql(
      api.url,
      TEST_ADMIN_KEY,
      `{ usage(tenantId: "${t.tenantId}", from: "last tuesday", to: "2026-01-01T00:00:00Z") { start } }`,
    );
    expect([inline.status, codeOf(inline)]).toEqual([400, "GRAPHQL_VALIDATION_FAILED"]);
  });

  it("refuses from >= to and ranges too long for the granularity", async () => {
    const same = await gql(api.url, TEST_ADMIN_KEY, USAGE, {
      t: t.tenantId,
      from: "2026-01-02T00:00:00Z",
      to: "2026-01-01T00:00:00Z",
    });
    expect(badInput(same)).toEqual({ status: 400, code: "BAD_USER_INPUT", field: "to" });
    const hours = await gql(api.url, TEST_ADMIN_KEY, USAGE, {
      t: t.tenantId,
      from: "2026-01-01T00:00:00Z",
      to: "2026-06-01T00:00:00Z",
      g: "HOUR",
    });
    expect(badInput(hours)).toEqual({ status: 400, code: "BAD_USER_INPUT", field: "to" });
    await gqlOk(api.url, TEST_ADMIN_KEY, USAGE, {
      t: t.tenantId,
      from: "2026-01-01T00:00:00Z",
      to: "2026-06-01T00:00:00Z",
      g: "DAY",
    });
  });
});

describe("Decimal and price books", () => {
  const SET =
    "mutation($i: PriceBookInput!) { setPriceBook(input: $i) { id currency effectiveFrom prices { meter dimension unitPrice unit } } }";
  const book = (unitPrice: unknown, extra: Record<string, unknown> = {}) => ({
    i: {
      currency: "USD",
      effectiveFrom: "2025-01-01T00:00:00Z",
      prices: [{ meter: "OUTPUT_TOKENS", unitPrice, unit: "1 token" }],
      ...extra,
    },
  });

  it("refuses malformed and negative Decimals, too many fractional digits, a bad currency", async () => {
    expect(badInput(await gql(api.url, TEST_ADMIN_KEY, SET, book("1e-7")))).toEqual({
      status: 400,
      code: "BAD_USER_INPUT",
      field: "i.prices[0].unitPrice",
    });
    expect(badInput(await gql(api.url, TEST_ADMIN_KEY, SET, book(0.5)))).toMatchObject({
      status: 400,
      code: "BAD_USER_INPUT",
    });
    expect(badInput(await gql(api.url, TEST_ADMIN_KEY, SET, book("-1")))).toEqual({
      status: 400,
      code: "BAD_USER_INPUT",
      field: "input.prices.0.unitPrice",
    });
    expect(badInput(await gql(api.url, TEST_ADMIN_KEY, SET, book("0.0000000000001")))).toEqual({
      status: 400,
      code: "BAD_USER_INPUT",
      field: "input.prices.0.unitPrice",
    });
    expect(badInput(await gql(api.url, TEST_ADMIN_KEY, SET, book("1", { currency: "dollars" })))).toEqual({
      status: 400,
      code: "BAD_USER_INPUT",
      field: "input.currency",
    });
    const inline = await gql(
      api.url,
      TEST_ADMIN_KEY,
      'mutation { setPriceBook(input: { currency: "USD", effectiveFrom: "2025-01-01T00:00:00Z", prices: [{ meter: OUTPUT_TOKENS, unitPrice: "abc", unit: "1 token" }] }) { id } }',
    );
    expect([inline.status, codeOf(inline)]).toEqual([400, "GRAPHQL_VALIDATION_FAILED"]);
  });

  it("keeps money exact and answers the book in force", async () => {
    const before = await gqlOk(api.url, t.secret, "{ priceBook { id currency } }");
    expect(before.priceBook).toEqual({ id: "pb_default", currency: "USD" });
    const set = await gqlOk(api.url, TEST_ADMIN_KEY, SET, {
      i: {
        currency: "EUR",
        effectiveFrom: "2025-06-01T00:00:00+02:00",
        prices: [
          { meter: "OUTPUT_TOKENS", unitPrice: "123456789012345678.123456789012", unit: "1 token" },
          { meter: "EXPERT_CALLS", dimension: "tiny.t3", unitPrice: "0.000000000001", unit: "1 call" },
        ],
      },
    });
    expect(set.setPriceBook.effectiveFrom).toBe("2025-05-31T22:00:00.000Z");
    const now = await gqlOk(api.url, t.secret, "{ priceBook { id currency prices { meter dimension unitPrice } } }");
    expect(now.priceBook.id).toBe(set.setPriceBook.id);
    expect(now.priceBook.prices).toEqual([
      { meter: "OUTPUT_TOKENS", dimension: null, unitPrice: "123456789012345678.123456789012" },
      { meter: "EXPERT_CALLS", dimension: "tiny.t3", unitPrice: "0.000000000001" },
    ]); // meters in the contract's enum order
    const future = await gqlOk(api.url, TEST_ADMIN_KEY, SET, book("9", { effectiveFrom: "2999-01-01T00:00:00Z" }));
    expect((await gqlOk(api.url, t.secret, "{ priceBook { id } }")).priceBook.id).not.toBe(future.setPriceBook.id);
  });
});

describe("request size", () => {
  const CC = "mutation($i: CompletionInput!) { createCompletion(input: $i) { id } }";
  it("refuses a prompt over MAX_PROMPT_BYTES with BAD_USER_INPUT naming it", async () => {
    const r = await gql(api.url, t.secret, CC, { i: { prompt: "é".repeat(MAX_PROMPT_BYTES / 2 + 1), maxTokens: 4 } });
    expect(badInput(r)).toEqual({ status: 400, code: "BAD_USER_INPUT", field: "input.prompt" });
  });

  it("answers a body over the limit with 413 JSON, never HTML", async () => {
    const res = await fetch(api.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${t.secret}` },
      body: JSON.stringify({ query: CC, variables: { i: { prompt: "x".repeat(MAX_PROMPT_BYTES * 8 + 70_000) } } }),
    });
    expect(res.status).toBe(413);
    expect(res.headers.get("content-type")).toMatch(/application\/json/);
    const body = (await res.json()) as { errors: Array<{ extensions: { code: string } }> };
    expect(body.errors[0].extensions.code).toBe("PAYLOAD_TOO_LARGE");
  });

  it("answers malformed JSON with 400 JSON", async () => {
    const res = await fetch(api.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${t.secret}` },
      body: "{nope",
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0].extensions.code).toBe(
      "BAD_REQUEST",
    );
  });
});
