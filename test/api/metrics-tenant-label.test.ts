/**
 * The API's /metrics with METRICS_TENANT_LABELS=2: however many tenants make requests, each
 * per-tenant series holds at most 2 tenant ids and `other` (operators count as `-`).
 */
import { CREATE_COMPLETION, gql, seedModel, TEST_ADMIN_KEY } from "@lite/testing";
import { startStack, type TestStack } from "../support/stack";

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack({ prepare: (e) => seedModel(e.db), apiEnv: { METRICS_TENANT_LABELS: "2" } });
});
afterAll(async () => {
  await stack?.close();
});

function tenantValues(text: string, metric: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(new RegExp(`^${metric}\\{([^}]*)\\}`, "gm"))) {
    const t = /tenant="([^"]*)"/.exec(m[1])?.[1];
    if (t !== undefined) out.add(t);
  }
  return out;
}

describe("bounded tenant label on the API's /metrics", () => {
  it("6 tenants, N = 2: at most 2 ids and `other` per series", async () => {
    const tenants = await Promise.all(Array.from({ length: 6 }, () => stack.tenant()));
    for (const t of tenants) {
      const r = await gql(stack.api.url, t.secret, CREATE_COMPLETION, {
        input: { prompt: "hi", maxTokens: 2, mode: "FAST" },
      });
      expect(r.errors).toBeUndefined();
    }
    const res = await fetch(`${stack.api.baseUrl}/metrics`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    const admitted = tenantValues(text, "lite_requests_admitted_total");
    expect(admitted.size).toBe(3);
    expect(admitted.has("other")).toBe(true);
    const ops = tenantValues(text, "lite_api_graphql_operations_total");
    ops.delete("-");
    expect(ops.size).toBeLessThanOrEqual(3);
    expect(ops.has("other")).toBe(true);
    // the named ones are real tenants of this test
    const ids = new Set(tenants.map((t) => t.tenantId));
    for (const v of admitted) if (v !== "other") expect(ids.has(v)).toBe(true);
  });
});
