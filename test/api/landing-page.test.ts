/**
 * Issue 12, item 4: what a browser opening the API sees works offline. `/` and a browser's
 * `GET /graphql` answer a page served by the API itself (Apollo's Sandbox, loaded from a CDN,
 * is disabled); `/schema.graphql` is the served SDL. A client's request is never answered
 * with the page: JSON callers and keyed requests reach GraphQL as before.
 */
import { createTenant, type TenantWithKey } from "@lite/testing";
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

const html = { accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" };

describe("the landing page", () => {
  it("/ and a browser's GET /graphql answer the local page, which loads nothing from elsewhere", async () => {
    for (const url of [`${api.baseUrl}/`, api.url]) {
      const res = await fetch(url, { headers: html });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/html/);
      const page = await res.text();
      expect(page).toContain("/schema.graphql");
      expect(page).not.toMatch(/<(script|link|img)[^>]+(src|href)="https?:/i);
    }
  });

  it("/schema.graphql is the served SDL, without a key", async () => {
    const res = await fetch(`${api.baseUrl}/schema.graphql`);
    expect(res.status).toBe(200);
    const sdl = await res.text();
    expect(sdl).toContain("type Query");
    expect(sdl).toContain("createCompletion(");
  });

  it("a JSON client, a keyed request or a GET query is never answered with the page", async () => {
    const noKey = await fetch(api.url, { headers: { accept: "application/json" } });
    expect(noKey.status).toBe(401);
    expect(noKey.headers.get("content-type")).toMatch(/json/);
    const keyed = await fetch(`${api.url}?query=${encodeURIComponent("{ me { role } }")}`, {
      headers: { ...html, authorization: `Bearer ${t.secret}`, "apollo-require-preflight": "1" },
    });
    expect(keyed.headers.get("content-type")).toMatch(/json/);
    const query = await fetch(`${api.url}?query=${encodeURIComponent("{ me { role } }")}`, { headers: html });
    expect(query.headers.get("content-type")).toMatch(/json/);
    expect(query.status).toBe(401);
  });
});
