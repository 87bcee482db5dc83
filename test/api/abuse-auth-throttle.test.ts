/**
 * Issue 8, finding 8's last item: every request with a random key cost a database lookup
 * and an audit row. Failed authentication is throttled per source: past
 * AUTH_FAILURES_PER_SOURCE failures within AUTH_FAILURE_WINDOW_SECONDS, a source's unknown
 * keys answer 429 RATE_LIMITED (Retry-After) with no lookup and no audit row each, one
 * aggregated `auth.throttled` row instead; keys that authenticated recently still work.
 */
import { codeOf, createTenant, gql, TEST_ADMIN_KEY, wsConnect, type TenantWithKey } from "@lite/testing";
import type { RunningApiServer } from "../../apps/api/src/server";
import { startStack, type TestStack } from "../support/stack";

const BUDGET = 5;
// long enough that 40 sequential requests on a loaded 2-core machine stay in one window
const WINDOW_SECONDS = 6;
let stack: TestStack;
let api: RunningApiServer;
let t: TenantWithKey;

beforeAll(async () => {
  stack = await startStack({
    apiEnv: {
      AUTH_FAILURES_PER_SOURCE: String(BUDGET),
      AUTH_FAILURE_WINDOW_SECONDS: String(WINDOW_SECONDS),
      REFUSAL_TARPIT_MS: "20", // 35 refusals in a row below; the tarpit has its own test
    },
  });
  api = stack.api;
  t = await createTenant(stack.env.db);
});

afterAll(async () => {
  await stack?.close();
});

const ME = "{ me { role } }";
const randomKey = (i: number) => `lite_random_${i}_${Math.random().toString(36).slice(2)}abcdefgh`;

async function auditRows(action: string): Promise<number> {
  await api.services.auditWriter.flush();
  return stack.env.db.auditLog.count({ where: { action } });
}

describe("failed authentication per source", () => {
  it("past the budget: 429 with Retry-After, one aggregated audit row, known keys still served; then the window passes", async () => {
    // keys that have authenticated from here before
    expect(codeOf(await gql(api.url, t.secret, ME))).toBeUndefined();
    expect(codeOf(await gql(api.url, TEST_ADMIN_KEY, ME))).toBeUndefined();
    const before = await auditRows("auth.http");
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 40; i++) {
      const r = await gql(api.url, randomKey(i), ME);
      statuses.push(r.status);
      if (r.status === 429) {
        expect(codeOf(r)).toBe("RATE_LIMITED");
        retryAfter = r.headers.get("retry-after");
      }
    }
    expect(statuses.slice(0, BUDGET)).toEqual(Array(BUDGET).fill(401));
    expect(statuses.slice(BUDGET)).toEqual(Array(40 - BUDGET).fill(429));
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await auditRows("auth.http")) - before).toBe(BUDGET);
    expect(await auditRows("auth.throttled")).toBe(1);

    // while the source is throttled, keys that authenticated recently are still served, a new one waits
    expect(codeOf(await gql(api.url, t.secret, ME))).toBeUndefined();
    expect(codeOf(await gql(api.url, TEST_ADMIN_KEY, ME))).toBeUndefined();
    const fresh = await createTenant(stack.env.db);
    expect(codeOf(await gql(api.url, fresh.secret, ME))).toBe("RATE_LIMITED");
    // and a WebSocket with an unknown key is refused without a lookup
    expect(await wsConnect(api.wsUrl, { authorization: randomKey(99) })).toEqual({ outcome: "closed", code: 4429 });

    await new Promise((r) => setTimeout(r, WINDOW_SECONDS * 1000 + 200));
    expect((await gql(api.url, randomKey(100), ME)).status).toBe(401);
  });

  it("no key at all costs no lookup and is not counted", async () => {
    await new Promise((r) => setTimeout(r, WINDOW_SECONDS * 1000 + 200));
    for (let i = 0; i < BUDGET * 3; i++) expect((await gql(api.url, null, ME)).status).toBe(401);
    expect((await gql(api.url, randomKey(1), ME)).status).toBe(401);
  });
});
