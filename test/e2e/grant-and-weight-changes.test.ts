import { COMPLETION_QUERY, CREATE_COMPLETION, waitFor, type StackTenant } from "@lite/testing";
import { startE2eStack, type TestStack } from "../support/stack";

type Created = { createCompletion: { id: string; tierSet: string[] } };
type Row = { completion: { status: string; text: string; outputTokens: number; finishReason: string | null } };

/** A tenant whose run of the mid-run test's input reaches maxTokens without EOS (found by running it). */
const RUNNING_TENANT = "ten_0000000000000000000000revoke1";

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
    // the revoke flagged the tenant's live completion that uses the tier, and no other
    const flagged = (t: StackTenant, id: string) => stack.env.redis.exists(stack.env.keys.cancelFlag(t.tenantId, id));
    expect([await flagged(a, ca.id), await flagged(b, cb.id)]).toEqual([1, 0]);
    await stack.spawnWorker({ env: { WORKER_STEP_DELAY_MS: "20" } });

    const rowA = await final(a, ca.id);
    expect(rowA).toMatchObject({ status: "FAILED", finishReason: "ERROR", outputTokens: 0, text: "" });
    const stored = await stack.env.db.completion.findUniqueOrThrow({ where: { id: ca.id } });
    expect(stored.error).toBe(`tier ${restricted} no longer granted to the tenant`);
    expect(stored.startedAt).toBeNull();
    // no token generated: the stream holds only the final event, at index 0
    // (the row is ended first, then the stream's final event)
    const streamKey = stack.env.keys.completionStream(a.tenantId, ca.id);
    await waitFor("final event", async () => ((await stack.env.redis.xlen(streamKey)) > 0 ? true : undefined));
    const events = await stack.env.redis.xrange(streamKey, "-", "+");
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

  it("a tier revoked while a completion runs: it stops at its next step, CANCELLED, billed what it streamed; another tenant's runs on", async () => {
    const { ids, restricted } = await allTiers();
    // pinned: at temperature 0 this tenant's run reaches maxTokens (no EOS), so only the revoke stops it
    const a = await stack.tenant({ id: RUNNING_TENANT, tierIds: ids });
    const b = await stack.tenant({ tierIds: ids });
    await stack.spawnWorker({ id: "worker-mid-run", env: { WORKER_STEP_DELAY_MS: "20" } });
    const input = { prompt: "Stop me mid-run", maxTokens: 140, mode: "MAX", seed: "5", temperature: 0 };
    const ca = (await a.http.ok<Created>(CREATE_COMPLETION, { input })).createCompletion;
    const cb = (await b.http.ok<Created>(CREATE_COMPLETION, { input })).createCompletion;
    const key = stack.env.keys.completionStream(a.tenantId, ca.id);
    await waitFor("tokens streamed", async () => ((await stack.env.redis.xlen(key)) >= 5 ? true : undefined), {
      timeoutMs: 30000,
      everyMs: 10,
    });
    await stack.admin.ok(REVOKE, { t: a.tenantId, tier: restricted });

    const rowA = await final(a, ca.id);
    expect(rowA).toMatchObject({ status: "CANCELLED", finishReason: "CANCELLED" });
    expect(rowA.outputTokens).toBeGreaterThanOrEqual(5);
    expect(rowA.outputTokens).toBeLessThan(input.maxTokens);
    // its tokens, then the final event (written after the row)
    await waitFor("final event", async () =>
      (await stack.env.redis.xlen(key)) === rowA.outputTokens + 1 ? true : undefined,
    );
    const billed = await stack.env.db.usageEvent.findFirst({ where: { completionId: ca.id, meter: "OUTPUT_TOKENS" } });
    expect(Number(billed?.quantity)).toBe(rowA.outputTokens);

    const rowB = await final(b, cb.id);
    expect(rowB.status).toBe("COMPLETED");
    await waitFor("admission released", async () => {
      const u = await stack.admission.usage(a.tenantId);
      return u.concurrent === 0 && u.outstandingTokens === 0 ? u : undefined;
    });
  }, 90000);
});
