import { collectTokens, COMPLETION_QUERY, CREATE_COMPLETION, waitFor, wsClient, type StackTenant } from "@lite/testing";
import { startE2eStack, type TestStack } from "../support/stack";

/**
 * Prefetch in a real worker (PREFETCH on by default): a completion on a cold worker gets its
 * next-layer experts prefetched, recorded as PREFETCH_BYTES usage for its own tenant and
 * completion, from its TierSet's tiers only; another tenant's completion in the same worker
 * records its own, and neither sees the other's. PREFETCH=off: none at all.
 */
describe("prefetch usage in a worker", () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startE2eStack({ workers: 1 });
  }, 60000);
  afterAll(async () => {
    await stack?.close();
  });

  async function complete(t: StackTenant, mode: string, prompt: string) {
    const r = await t.http.ok<{ createCompletion: { id: string; tierSet: string[] } }>(CREATE_COMPLETION, {
      input: { prompt, maxTokens: 8, mode, seed: "5" },
    });
    const { id, tierSet } = r.createCompletion;
    const ws = wsClient(stack.api.url, t.secret);
    await collectTokens(ws, id);
    await ws.dispose();
    await waitFor("final row", async () => {
      const q = await t.http.ok<{ completion: { status: string } }>(COMPLETION_QUERY, { id });
      return q.completion.status === "COMPLETED" ? true : undefined;
    });
    const usage = await waitFor("usage", async () => {
      const rows = await stack.env.db.usageEvent.findMany({ where: { completionId: id } });
      return rows.some((u) => u.meter === "OUTPUT_TOKENS") ? rows : undefined;
    });
    return { id, tierSet, usage };
  }

  it("PREFETCH_BYTES for the completion's own tenant, its TierSet's tiers only; another tenant's are its own", async () => {
    const a = await stack.tenant();
    const b = await stack.tenant();
    const ca = await complete(a, "FAST", "the first tenant's prompt on a cold worker");
    const prefetchA = ca.usage.filter((u) => u.meter === "PREFETCH_BYTES");
    expect(prefetchA.length).toBeGreaterThan(0);
    for (const u of prefetchA) {
      expect(u.tenantId).toBe(a.tenantId);
      expect(ca.tierSet).toContain(u.dimension);
      expect(u.quantity).toBeGreaterThan(0n);
    }
    const cb = await complete(b, "MAX", "another tenant, every tier it is granted");
    const prefetchB = cb.usage.filter((u) => u.meter === "PREFETCH_BYTES");
    for (const u of prefetchB) {
      expect(u.tenantId).toBe(b.tenantId);
      expect(cb.tierSet).toContain(u.dimension);
    }
    // B is not granted the restricted tier: nothing of it was prefetched on B's behalf
    const granted = new Set(
      (await stack.env.db.tierGrant.findMany({ where: { tenantId: b.tenantId } })).map((g) => g.tierId),
    );
    const restricted = await stack.env.db.tier.findMany({ where: { restricted: true, ownerTenantId: null } });
    expect(restricted.some((t) => !granted.has(t.id))).toBe(true);
    for (const u of prefetchB) expect(granted.has(u.dimension!)).toBe(true);
    // nothing of one tenant's prefetch is recorded under the other
    const all = await stack.env.db.usageEvent.findMany({
      where: { meter: "PREFETCH_BYTES", tenantId: { in: [a.tenantId, b.tenantId] } },
    });
    for (const u of all) expect(u.completionId).toBe(u.tenantId === a.tenantId ? ca.id : cb.id);
    expect(all).toHaveLength(prefetchA.length + prefetchB.length);
  });

  it("PREFETCH=off: a cold worker records no PREFETCH_BYTES", async () => {
    for (const w of stack.workers) await w.stop();
    await stack.spawnWorker({ env: { PREFETCH: "off" } });
    const t = await stack.tenant();
    const c = await complete(t, "MAX", "a prompt on a worker without prefetch");
    expect(c.usage.filter((u) => u.meter === "PREFETCH_BYTES")).toEqual([]);
    expect(c.usage.some((u) => u.meter === "EXPERT_CALLS")).toBe(true);
  });
});
