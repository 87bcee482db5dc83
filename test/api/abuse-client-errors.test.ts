/**
 * Issue 8, the flood target for HTTP (bench `abuse`, attacks b, c, e and f): a request is
 * authenticated before its body is read, and a tenant whose requests keep being refused as
 * malformed or invalid spends its client-error budget (CLIENT_ERROR_BURST, refilled at
 * CLIENT_ERRORS_PER_SECOND); past it, RATE_LIMITED (reason CLIENT_ERRORS, Retry-After) after
 * the tarpit, with no body parsed; a refused body costs one unit per 16 KiB. Other tenants are
 * not affected.
 */
import { codeOf, createTenant, gql, type TenantWithKey } from "@lite/testing";
import type { RunningApiServer } from "../../apps/api/src/server";
import { apiMetrics } from "../../apps/api/src/metrics";
import { startStack, type TestStack } from "../support/stack";

const BURST = 4;
/** above the 1 s of Retry-After, so that min(Retry-After, tarpit) is Retry-After's whole second */
const TARPIT_MS = 1500;
let stack: TestStack;
let api: RunningApiServer;

beforeAll(async () => {
  stack = await startStack({
    apiEnv: { CLIENT_ERROR_BURST: String(BURST), CLIENT_ERRORS_PER_SECOND: "2", REFUSAL_TARPIT_MS: String(TARPIT_MS) },
  });
  api = stack.api;
});

afterAll(async () => {
  await stack?.close();
});

const ME = "{ me { role } }";
/** A body that is not JSON, with this key (or none). */
const postRaw = (key: string | null, body: string) =>
  fetch(api.url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body,
  });

const refusals = async () => (await apiMetrics.httpRefusals.get()).values.reduce((n, v) => n + v.value, 0);

describe("authentication before the body", () => {
  it("a request without a key, or with a wrong one, is 401 even when its body is not JSON (nothing parsed)", async () => {
    for (const key of [null, "lite_not_a_key_0123456789abcdefghij"]) {
      const res = await postRaw(key, "{nope");
      expect(res.status).toBe(401);
      const body = (await res.json()) as { errors: Array<{ extensions: { code: string; requestId: string } }> };
      expect(body.errors[0].extensions).toMatchObject({ code: "UNAUTHENTICATED" });
      expect(body.errors[0].extensions.requestId).toBe(res.headers.get("x-request-id"));
    }
  });
});

describe("client-error budget", () => {
  let a: TenantWithKey;
  let b: TenantWithKey;
  beforeAll(async () => {
    a = await createTenant(stack.env.db);
    b = await createTenant(stack.env.db);
  });

  it("past CLIENT_ERROR_BURST refusals: RATE_LIMITED after the tarpit, body unread; another tenant is served; it refills", async () => {
    for (let i = 0; i < BURST; i++) expect((await postRaw(a.secret, "{nope")).status).toBe(400);
    const before = await refusals();
    const started = Date.now();
    // even a valid request waits for the budget: it is the tenant, not the request, that floods
    const r = await gql(api.url, a.secret, ME);
    expect(r.status).toBe(429);
    expect(codeOf(r)).toBe("RATE_LIMITED");
    expect(r.errors?.[0]?.extensions).toMatchObject({ reason: "CLIENT_ERRORS" });
    expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(r.headers.get("connection")).toBe("close");
    // answered after min(Retry-After, tarpit): Retry-After's whole second, not the budget's
    // own wait (at most 500 ms at 2/s), which let a flooding client back sooner than it says
    expect(Date.now() - started).toBeGreaterThanOrEqual(Math.min(1000, TARPIT_MS) - 20);
    expect((await refusals()) - before).toBe(1);
    // the other tenant, with as many refusals as a had minus one, is untouched
    for (let i = 0; i < BURST - 1; i++) expect((await postRaw(b.secret, "{nope")).status).toBe(400);
    expect(codeOf(await gql(api.url, b.secret, ME))).toBeUndefined();
    // at 2/s, one unit is back within 500 ms
    await new Promise((res) => setTimeout(res, 600));
    expect(codeOf(await gql(api.url, a.secret, ME))).toBeUndefined();
  });

  it("a refused body is charged by its size: one of 64 KiB spends 4 units, the whole burst here", async () => {
    const big = await createTenant(stack.env.db);
    const res = await postRaw(big.secret, "{" + "x".repeat(64 * 1024 - 1));
    expect(res.status).toBe(400);
    const r = await gql(api.url, big.secret, ME);
    expect(r.status).toBe(429);
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: "RATE_LIMITED", reason: "CLIENT_ERRORS" });
  });

  it("successful requests and GraphQL errors answered 200 (NOT_FOUND) spend nothing", async () => {
    const c = await createTenant(stack.env.db);
    const missing = 'query { completion(id: "cmp_0123456789abcdefghjkmnpqrs") { id } }';
    for (let i = 0; i < BURST * 3; i++) {
      expect(codeOf(await gql(api.url, c.secret, ME))).toBeUndefined();
      expect(codeOf(await gql(api.url, c.secret, missing))).toBe("NOT_FOUND");
    }
  });
});
