/**
 * Issue 12, item 3: bull-board at /admin/queues for ADMIN keys only, showing the per-tenant
 * BullMQ queues the scheduler's index knows. Anonymous 401 (with a Basic challenge so a
 * browser prompts), TENANT and FINANCE 403, ADMIN 200 (Bearer or Basic with the key as
 * password); a tenant's queue appears once it enqueues, read-only.
 */
import { codeOf, CREATE_COMPLETION, createKey, type StackTenant } from "@lite/testing";
import { startE2eStack, type TestStack } from "../support/stack";

let stack: TestStack;
beforeAll(async () => {
  // No worker: an enqueued completion stays waiting in its tenant's queue.
  stack = await startE2eStack({ workers: 0 });
}, 60000);
afterAll(async () => {
  await stack?.close();
});

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`,
});

interface BoardQueue {
  name: string;
  readOnlyMode: boolean;
  counts: Record<string, number>;
}

async function boardQueues(headers: Record<string, string>): Promise<BoardQueue[]> {
  const r = await fetch(`${stack.api.baseUrl}/admin/queues/api/queues?activeQueue=&status=latest&page=1`, { headers });
  expect(r.status).toBe(200);
  return ((await r.json()) as { queues: BoardQueue[] }).queues;
}

async function enqueue(t: StackTenant): Promise<string> {
  const input = { prompt: "Hello", maxTokens: 4, mode: "FAST", seed: "1" };
  const r = await t.http.ok<{ createCompletion: { id: string } }>(CREATE_COMPLETION, { input });
  return r.createCompletion.id;
}

describe("bull-board at /admin/queues", () => {
  it("refuses anonymous (401 with a Basic challenge), a wrong key (401), TENANT and FINANCE keys (403)", async () => {
    const t = await stack.tenant();
    const finance = await createKey(stack.env.db, "FINANCE");
    for (const path of ["/admin/queues", "/admin/queues/api/queues", "/admin/queues/static/images/logo.svg"]) {
      const anon = await fetch(`${stack.api.baseUrl}${path}`);
      expect([path, anon.status]).toEqual([path, 401]);
      expect(anon.headers.get("www-authenticate")).toMatch(/^Basic realm=/);
      expect(
        ((await anon.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0].extensions.code,
      ).toBe("UNAUTHENTICATED");
      const wrong = await fetch(`${stack.api.baseUrl}${path}`, { headers: bearer("not-a-key-0123456789") });
      expect(wrong.status).toBe(401);
      const tenant = await fetch(`${stack.api.baseUrl}${path}`, { headers: bearer(t.secret) });
      expect(tenant.status).toBe(403);
      expect(await tenant.text()).toContain("role TENANT may not read /admin/queues");
      const tenantBasic = await fetch(`${stack.api.baseUrl}${path}`, { headers: basic("", t.secret) });
      expect(tenantBasic.status).toBe(403);
      const fin = await fetch(`${stack.api.baseUrl}${path}`, { headers: bearer(finance.secret) });
      expect(fin.status).toBe(403);
    }
  });

  it("answers ADMIN (Bearer, or Basic with the key as password or user) with the board's page", async () => {
    for (const headers of [bearer(stack.adminKey), basic("admin", stack.adminKey), basic(stack.adminKey, "")]) {
      const r = await fetch(`${stack.api.baseUrl}/admin/queues`, { headers });
      expect(r.status).toBe(200);
      const html = await r.text();
      expect(html).toContain("Tenant queues");
      expect(html).toContain(`<base href="/admin/queues/" />`);
    }
  });

  it("lists a tenant's own queue once it enqueues, with its waiting job, read-only; never another's job under it", async () => {
    const a = await stack.tenant();
    const b = await stack.tenant();
    const before = await boardQueues(bearer(stack.adminKey));
    expect(before.map((q) => q.name)).not.toContain(`${a.tenantId}:completions`);
    const idA = await enqueue(a);
    await enqueue(b);
    await enqueue(b);
    // The list is re-read at most once a second.
    await new Promise((r) => setTimeout(r, 1100));
    const queues = await boardQueues(basic("admin", stack.adminKey));
    const qa = queues.find((q) => q.name === `${a.tenantId}:completions`);
    const qb = queues.find((q) => q.name === `${b.tenantId}:completions`);
    expect(qa).toMatchObject({ readOnlyMode: true, counts: expect.objectContaining({ waiting: 1 }) });
    expect(qb).toMatchObject({ readOnlyMode: true, counts: expect.objectContaining({ waiting: 2 }) });
    const jobs = await fetch(
      `${stack.api.baseUrl}/admin/queues/api/queues?activeQueue=${encodeURIComponent(qa!.name)}&status=waiting&page=1`,
      { headers: bearer(stack.adminKey) },
    );
    const body = (await jobs.json()) as { queues: Array<{ name: string; jobs: Array<{ id: string }> }> };
    const listed = body.queues.find((q) => q.name === qa!.name)!;
    expect(listed.jobs.map((j) => j.id)).toEqual([idA]);
    // Read-only: the board refuses to remove or empty (the completion lifecycle owns the jobs).
    const base = `${stack.api.baseUrl}/admin/queues/api/queues/${encodeURIComponent(qa!.name)}`;
    for (const [method, path] of [
      ["PUT", `/${idA}/clean`],
      ["PUT", "/empty"],
      ["PUT", "/pause"],
    ]) {
      const r = await fetch(`${base}${path}`, { method, headers: bearer(stack.adminKey) });
      expect([path, r.status >= 400]).toEqual([path, true]);
    }
    await new Promise((r) => setTimeout(r, 1100));
    const after = (await boardQueues(bearer(stack.adminKey))).find((q) => q.name === qa!.name);
    expect(after!.counts.waiting).toBe(1);
  });

  it("Tenant.queue: live depth and admission use of the tenant's own queue; another tenant's is NOT_FOUND", async () => {
    const a = await stack.tenant();
    const b = await stack.tenant();
    const Q =
      "query Q($id: ID!) { tenant(id: $id) { id queue { waiting active concurrentRequests outstandingTokens } } }";
    const empty = await a.http.ok<{ tenant: { queue: Record<string, number> } }>(Q, { id: a.tenantId });
    expect(empty.tenant.queue).toEqual({ waiting: 0, active: 0, concurrentRequests: 0, outstandingTokens: 0 });
    await enqueue(a);
    await enqueue(a);
    const two = await a.http.ok<{ tenant: { queue: Record<string, number> } }>(Q, { id: a.tenantId });
    // maxTokens 4 × FAST's cost weight 1, twice
    expect(two.tenant.queue).toEqual({ waiting: 2, active: 0, concurrentRequests: 2, outstandingTokens: 8 });
    const cross = await b.http.request(Q, { id: a.tenantId });
    expect(codeOf(cross)).toBe("NOT_FOUND");
    expect(JSON.stringify(cross.data)).not.toContain('"waiting"');
    const asAdmin = await stack.admin.ok<{ tenants: { nodes: Array<{ id: string; queue: { waiting: number } }> } }>(
      "{ tenants(first: 500) { nodes { id queue { waiting } } } }",
    );
    expect(asAdmin.tenants.nodes.find((n) => n.id === a.tenantId)!.queue.waiting).toBe(2);
    expect(asAdmin.tenants.nodes.find((n) => n.id === b.tenantId)!.queue.waiting).toBe(0);
  });
});
