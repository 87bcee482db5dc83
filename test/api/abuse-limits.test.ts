/**
 * Issue 8, finding 4 and the deep-nesting leak of 8: GraphQL limits per request (aliases,
 * depth, tokens, directives, cost) through graphql-armor. An operation over a limit is
 * refused at validation (400 GRAPHQL_VALIDATION_FAILED) before any resolver runs; nothing
 * answers 500 or shows internal text such as "Maximum call stack size exceeded".
 */
import { codeOf, createTenant, gql, TEST_ADMIN_KEY, type GqlResponse, type TenantWithKey } from "@lite/testing";
import type { RunningApiServer } from "../../apps/api/src/server";
import { startStack, type TestStack } from "../support/stack";

let stack: TestStack;
let api: RunningApiServer;
let t: TenantWithKey;

beforeAll(async () => {
  stack = await startStack();
  api = stack.api;
  t = await createTenant(stack.env.db);
});

afterAll(async () => {
  await stack?.close();
});

const refused = (r: GqlResponse) => ({ status: r.status, code: codeOf(r) });
const text = (r: GqlResponse) => JSON.stringify(r.errors ?? []);
const ME = "me { role }";

describe("per-request GraphQL limits", () => {
  it("1,000 aliases of priceBook are refused before any resolver", async () => {
    const q = `{ ${Array.from({ length: 1000 }, (_, i) => `p${i}: priceBook { id }`).join(" ")} }`;
    const started = performance.now();
    const r = await gql(api.url, t.secret, q);
    expect(r.status).toBe(400);
    expect(["GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED"]).toContain(codeOf(r));
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it("100 aliases (within the token limit) are refused by the alias limit", async () => {
    const q = `{ ${Array.from({ length: 100 }, (_, i) => `p${i}: priceBook { id }`).join(" ")} }`;
    const r = await gql(api.url, t.secret, q);
    expect(refused(r)).toEqual({ status: 400, code: "GRAPHQL_VALIDATION_FAILED" });
    expect(text(r)).toMatch(/alias/i);
  });

  it("a fragment cycle is refused, not followed", async () => {
    const r = await gql(api.url, t.secret, "fragment A on Query { ...A me { role } } { ...A }");
    expect(refused(r)).toEqual({ status: 400, code: "GRAPHQL_VALIDATION_FAILED" });
  });

  it("aliases within the limit are served", async () => {
    const q = `{ ${Array.from({ length: 10 }, (_, i) => `p${i}: priceBook { id }`).join(" ")} }`;
    const r = await gql(api.url, t.secret, q);
    expect(r.errors).toBeUndefined();
  });

  it.each([
    ["inline fragments", (n: number) => `{ ${"... on Query { ".repeat(n)}${ME}${" }".repeat(n)} }`],
    ["selections", (n: number) => `{ ${"a { ".repeat(n)}b${" }".repeat(n)} }`],
  ])("nesting 5,000 deep (%s) is a 400 without internal text", async (_n, build) => {
    const r = await gql(api.url, t.secret, build(5000));
    expect(r.status).toBe(400);
    expect(["GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED"]).toContain(codeOf(r));
    expect(text(r)).not.toMatch(/call stack|RangeError|Internal/i);
  });

  it("nesting 12 deep is refused by depth (the schema's real depth is far less)", async () => {
    const r = await gql(api.url, t.secret, `{ ${"... on Query { ".repeat(12)}${ME}${" }".repeat(12)} }`);
    expect(refused(r)).toEqual({ status: 400, code: "GRAPHQL_VALIDATION_FAILED" });
    expect(text(r)).toMatch(/depth/i);
  });

  it("a document over the token limit is refused", async () => {
    const q = `{ me { ${Array.from({ length: 3000 }, () => "role").join(" ")} } }`;
    const r = await gql(api.url, t.secret, q);
    expect(r.status).toBe(400);
    expect(text(r)).toMatch(/token/i);
  });

  it("more directives than allowed are refused", async () => {
    const r = await gql(api.url, t.secret, `{ me { ${"role @include(if: true) ".repeat(60)} } }`);
    expect(refused(r)).toEqual({ status: 400, code: "GRAPHQL_VALIDATION_FAILED" });
    expect(text(r)).toMatch(/directive/i);
  });

  it("an operation over the cost limit is refused", async () => {
    const wide =
      "tenants(first: 500) { nodes { id name weight suspended createdAt quota { hotMemoryBytes warmMemoryBytes kvCacheBytes requestsPerMinute } tiers { id name placement } apiKeys { id prefix role } } }";
    const q = `{ ${Array.from({ length: 3 }, (_, i) => `t${i}: ${wide}`).join(" ")} }`;
    const r = await gql(api.url, TEST_ADMIN_KEY, q);
    expect(refused(r)).toEqual({ status: 400, code: "GRAPHQL_VALIDATION_FAILED" });
    expect(text(r)).toMatch(/cost/i);
  });

  it("field suggestions are not offered (the schema is not guessable through errors)", async () => {
    const r = await gql(api.url, t.secret, "{ mee { role } }");
    expect(r.status).toBe(400);
    expect(text(r)).not.toMatch(/Did you mean/);
  });

  it("six 1,000-alias requests at once leave /readyz answering 200", async () => {
    const q = `{ ${Array.from({ length: 1000 }, (_, i) => `p${i}: priceBook { id currency prices { meter unitPrice } }`).join(" ")} }`;
    const flood = Promise.all(Array.from({ length: 6 }, () => gql(api.url, t.secret, q)));
    const ready = await fetch(`${api.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
    for (const r of await flood) expect(r.status).toBe(400);
  });
});
