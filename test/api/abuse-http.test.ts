/**
 * Issue 8, finding 6 (`GET /metrics` needs an ADMIN key) and the HTTP client errors of 8:
 * an unknown Content-Encoding or charset is 415, persisted-query errors are 4xx, a
 * subscription sent by HTTP POST is 400 pointing at WebSocket; never 500.
 */
import { gzipSync } from "node:zlib";
import { createKey, createTenant, TEST_ADMIN_KEY, type TenantWithKey } from "@lite/testing";
import type { RunningApiServer } from "../../apps/api/src/server";
import { startStack, type TestStack } from "../support/stack";

let stack: TestStack;
let api: RunningApiServer;
let t: TenantWithKey;
let finance: string;

beforeAll(async () => {
  stack = await startStack();
  api = stack.api;
  t = await createTenant(stack.env.db);
  finance = (await createKey(stack.env.db, "FINANCE")).secret;
});

afterAll(async () => {
  await stack?.close();
});

type ErrorBody = { errors: { message: string; extensions: { code: string } }[] };

async function post(
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; code?: string; message?: string }> {
  const res = await fetch(api.url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${t.secret}`, ...headers },
    body,
  });
  const text = await res.text();
  let json: { errors?: { message: string; extensions?: { code?: string } }[] } = {};
  try {
    json = JSON.parse(text);
  } catch {
    return { status: res.status, message: `non-JSON: ${text.slice(0, 80)}` };
  }
  return { status: res.status, code: json.errors?.[0]?.extensions?.code, message: json.errors?.[0]?.message };
}

describe("GET /metrics is for ADMIN keys", () => {
  const scrape = (key?: string) =>
    fetch(`${api.baseUrl}/metrics`, { headers: key ? { authorization: `Bearer ${key}` } : {} });

  it("401 without a key or with a wrong one, as JSON", async () => {
    for (const key of [undefined, "wrong-key-0123456789"]) {
      const r = await scrape(key);
      expect(r.status).toBe(401);
      expect(((await r.json()) as ErrorBody).errors[0].extensions.code).toBe("UNAUTHENTICATED");
    }
  });

  it("403 for TENANT and FINANCE keys", async () => {
    for (const key of [t.secret, finance]) {
      const r = await scrape(key);
      expect(r.status).toBe(403);
      expect(((await r.json()) as ErrorBody).errors[0].extensions.code).toBe("FORBIDDEN");
    }
  });

  it("200 in Prometheus text for an ADMIN key", async () => {
    const r = await scrape(TEST_ADMIN_KEY);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await r.text()).toMatch(/^lite_api_http_requests_total/m);
  });
});

describe("HTTP client errors are 4xx, never 500", () => {
  const body = JSON.stringify({ query: "{ me { role } }" });

  it("gzip is understood", async () => {
    expect(await post(gzipSync(body), { "content-encoding": "gzip" })).toMatchObject({ status: 200 });
  });

  it("an unknown Content-Encoding is 415", async () => {
    expect(await post(body, { "content-encoding": "snappy" })).toMatchObject({
      status: 415,
      code: "UNSUPPORTED_MEDIA_TYPE",
    });
  });

  it("an unsupported charset is 415", async () => {
    expect(await post(body, { "content-type": "application/json; charset=ebcdic-xyz" })).toMatchObject({
      status: 415,
      code: "UNSUPPORTED_MEDIA_TYPE",
    });
  });

  it.each([
    ["an unknown hash", { extensions: { persistedQuery: { version: 1, sha256Hash: "ab".repeat(32) } } }],
    ["a hash that is not a string", { extensions: { persistedQuery: { version: 1, sha256Hash: 12 } } }],
    ["an unsupported version", { extensions: { persistedQuery: { version: 2, sha256Hash: "ab".repeat(32) } } }],
    [
      "a hash that does not match the query",
      { query: "{ me { role } }", extensions: { persistedQuery: { version: 1, sha256Hash: "ab".repeat(32) } } },
    ],
    ["persistedQuery not an object", { query: "{ me { role } }", extensions: { persistedQuery: "yes" } }],
  ])("a persisted query with %s is 4xx", async (_n, payload) => {
    const r = await post(JSON.stringify(payload));
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
  });

  it("a subscription by HTTP POST is 400 saying to use WebSocket", async () => {
    const r = await post(
      JSON.stringify({ query: 'subscription { completionTokens(id: "cmp_0123456789abcdefghjkmnpqrs") { index } }' }),
    );
    expect(r).toMatchObject({ status: 400, code: "BAD_REQUEST" });
    expect(r.message).toMatch(/WebSocket/);
  });

  it("a subscription by GET is refused as GET refuses every non-query (405), not 500", async () => {
    const q = encodeURIComponent('subscription { completionTokens(id: "cmp_0123456789abcdefghjkmnpqrs") { index } }');
    const res = await fetch(`${api.url}?query=${q}`, {
      headers: { authorization: `Bearer ${t.secret}`, "apollo-require-preflight": "1" },
    });
    expect(res.status).toBe(405);
  });
});
