import {
  COMPLETION_QUERY,
  CREATE_COMPLETION,
  scrapeWorkerMetrics,
  TEST_ADMIN_KEY,
  waitFor,
  type StackTenant,
} from "@lite/testing";
import { parseTenantCounter } from "@lite/telemetry";
import { startE2eStack, type TestStack } from "../support/stack";

/**
 * The worker's timing defence (TIMING_DEFENCE, on by default) counts each tenant's padded
 * first uses in lite_padded_first_uses_total{tenant}: a tenant's count moves with its own
 * completions only, never with another tenant's (so it says nothing about their residency);
 * off, nothing is padded or counted. Cold experts park their sequences (the first
 * completion on a fresh worker loads every expert it uses) and the completions still end
 * COMPLETED with every token.
 */
describe("timing defence in the worker", () => {
  let stack: TestStack;
  let metricsUrl = "";
  /** the only worker: TIMING_DEFENCE on, then (second test) off */
  async function worker(defence: "on" | "off"): Promise<void> {
    await Promise.all(stack.workers.map((w) => w.stop(10000)));
    const w = await stack.spawnWorker({ batchSize: 4, env: { WORKER_METRICS_PORT: "0", TIMING_DEFENCE: defence } });
    metricsUrl = `http://127.0.0.1:${/"metricsPort":(\d+)/.exec(w.output())?.[1]}/metrics`;
  }
  beforeAll(async () => {
    stack = await startE2eStack({ workers: 0 });
  }, 60000);
  afterAll(async () => {
    await stack?.close();
  });

  const padded = async () =>
    parseTenantCounter(await scrapeWorkerMetrics(metricsUrl, TEST_ADMIN_KEY), "lite_padded_first_uses_total");

  async function complete(t: StackTenant, prompt: string): Promise<number> {
    const r = await t.http.ok<{ createCompletion: { id: string } }>(CREATE_COMPLETION, {
      input: { prompt, maxTokens: 10, mode: "FAST", seed: "7", temperature: 0 },
    });
    const id = r.createCompletion.id;
    const done = await waitFor("completed", async () => {
      const q = await t.http.ok<{ completion: { status: string; outputTokens: number } }>(COMPLETION_QUERY, { id });
      return q.completion.status === "COMPLETED" ? q.completion : undefined;
    });
    return done.outputTokens;
  }

  it("on: each tenant's count moves with its own first uses only", async () => {
    await worker("on");
    const victim = await stack.tenant();
    const neighbour = await stack.tenant();
    expect(await complete(victim, "same words")).toBeGreaterThan(0);
    const first = await padded();
    const mine = first.get(victim.tenantId) ?? 0;
    expect(mine).toBeGreaterThan(0);
    expect(first.get(neighbour.tenantId) ?? 0).toBe(0);

    // the same completion again uses the same experts: no first use left
    expect(await complete(victim, "same words")).toBeGreaterThan(0);
    expect((await padded()).get(victim.tenantId)).toBe(mine);

    // the neighbour's first uses are its own; the victim's count does not move
    expect(await complete(neighbour, "same words")).toBeGreaterThan(0);
    const after = await padded();
    expect(after.get(neighbour.tenantId) ?? 0).toBeGreaterThan(0);
    expect(after.get(victim.tenantId)).toBe(mine);
  });

  it("off: completions complete and nothing is padded or counted", async () => {
    await worker("off");
    const a = await stack.tenant();
    const b = await stack.tenant();
    expect(await complete(a, "same words")).toBeGreaterThan(0);
    expect(await complete(b, "other words")).toBeGreaterThan(0);
    const counts = await padded();
    expect(counts.get(a.tenantId) ?? 0).toBe(0);
    expect(counts.get(b.tenantId) ?? 0).toBe(0);
  });
});
