import { COMPLETION_QUERY, CREATE_COMPLETION, waitFor, type StackTenant } from "@lite/testing";
import { startE2eStack, type TestStack } from "../support/stack";

type Created = { createCompletion: { id: string; tierSet: string[] } };
type Row = { completion: { status: string; text: string; outputTokens: number; finishReason: string | null } };

const REVOKE = `mutation($t: ID!, $tier: ID!) { revokeTier(tenantId: $t, tierId: $tier) { id tiers { id } } }`;
const UPDATE = `mutation($id: ID!, $w: Int) { updateTenant(id: $id, input: { weight: $w }) { id weight } }`;

/**
 * Admin changes reach work already accepted (issue 9, finding 7): a tier revoked while a
 * completion waits is never loaded for it (the worker re-checks the grants at job start),
 * and a new weight reaches the fair scheduler at once, not at the tenant's next request.
 */
describe("grant and weight changes reach queued work", () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startE2eStack({ workers: 0 });
  }, 60000);
  afterAll(async () => {
    await stack?.close();
  });

  async function allTiers(): Promise<{ ids: string[]; restricted: string }> {
    const tiers = await stack.env.db.tier.findMany({ where: { ownerTenantId: null }, orderBy: { rank: "asc" } });
    return { ids: tiers.map((t) => t.id), restricted: tiers.find((t) => t.restricted)!.id };
  }

  async function final(t: StackTenant, id: string): Promise<Row["completion"]> {
    return waitFor(
      `completion ${id} final`,
      async () => {
        const c = (await t.http.ok<Row>(COMPLETION_QUERY, { id })).completion;
        return c.status === "QUEUED" || c.status === "RUNNING" ? undefined : c;
      },
      { timeoutMs: 40000 },
    );
  }

  it("updateTenant's new weight reaches the scheduler at once for a tenant with a backlog; other tenants keep theirs", async () => {
    // no worker runs yet: the completions wait
    const a = await stack.tenant({ weight: 2 });
    const b = await stack.tenant({ weight: 2 });
    const input = { prompt: "Wait for me", maxTokens: 8, mode: "FAST" };
    for (const t of [a, b, a, b]) await t.http.ok<Created>(CREATE_COMPLETION, { input });
    const weights = stack.api.services.completions.scheduler.index;
    expect(await weights.weight(a.tenantId)).toBe(2);

    const updated = await stack.admin.ok<{ updateTenant: { weight: number } }>(UPDATE, { id: a.tenantId, w: 7 });
    expect(updated.updateTenant.weight).toBe(7);
    // no request of the tenant in between: the weight hash already holds the new weight
    expect(await weights.weight(a.tenantId)).toBe(7);
    expect(await weights.weight(b.tenantId)).toBe(2);
    // a name-only update leaves the weight alone
    await stack.admin.ok(
      `mutation($id: ID!) { updateTenant(id: $id, input: { name: "renamed-${a.tenantId}" }) { id } }`,
      {
        id: a.tenantId,
      },
    );
    expect(await weights.weight(a.tenantId)).toBe(7);
  }, 60000);

  it("a tier revoked while a completion waits: it ends FAILED naming the tier, unrun, unbilled, released; another tenant's runs", async () => {
    const { ids, restricted } = await allTiers();
    const a = await stack.tenant({ tierIds: ids });
    const b = await stack.tenant({ tierIds: ids });
    const input = { prompt: "Revoke me", maxTokens: 8, mode: "MAX", seed: "3" };
    const ca = (await a.http.ok<Created>(CREATE_COMPLETION, { input })).createCompletion;
    const cb = (await b.http.ok<Created>(CREATE_COMPLETION, { input })).createCompletion;
    expect(ca.tierSet).toContain(restricted);
    expect(cb.tierSet).toContain(restricted);

    const revoked = await stack.admin.ok<{ revokeTier: { tiers: Array<{ id: string }> } }>(REVOKE, {
      t: a.tenantId,
      tier: restricted,
    });
    expect(revoked.revokeTier.tiers.map((x) => x.id)).not.toContain(restricted);
    await stack.spawnWorker();

    const rowA = await final(a, ca.id);
    expect(rowA).toMatchObject({ status: "FAILED", finishReason: "ERROR", outputTokens: 0, text: "" });
    const stored = await stack.env.db.completion.findUniqueOrThrow({ where: { id: ca.id } });
    expect(stored.error).toBe(`tier ${restricted} no longer granted to the tenant`);
    expect(stored.startedAt).toBeNull();
    // no token generated: the stream holds only the final event, at index 0
    const events = await stack.env.redis.xrange(stack.env.keys.completionStream(a.tenantId, ca.id), "-", "+");
    expect(events).toHaveLength(1);
    expect(await stack.env.db.usageEvent.count({ where: { completionId: ca.id } })).toBe(0);

    // the other tenant still holds its grant: its completion runs with the restricted tier
    const rowB = await final(b, cb.id);
    expect(rowB).toMatchObject({ status: "COMPLETED" });
    expect(rowB.outputTokens).toBeGreaterThan(0);
    expect(await stack.env.db.usageEvent.count({ where: { completionId: cb.id, meter: "OUTPUT_TOKENS" } })).toBe(1);

    for (const t of [a, b]) {
      await waitFor("admission released", async () => {
        const u = await stack.admission.usage(t.tenantId);
        return u.concurrent === 0 && u.outstandingTokens === 0 && u.queuedTokensGlobal === 0 ? u : undefined;
      });
    }
  }, 90000);
});
