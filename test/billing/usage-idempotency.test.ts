/**
 * The meters recorded today (INPUT_TOKENS, OUTPUT_TOKENS, EXPERT_CALLS per tier,
 * TIERSET_ACTIVATIONS per mode) are keyed per (completion, meter, dimension): a retried or
 * replayed job's second write counts nothing, and the invoice bills the completion once.
 */
import { tenantInvoice, createPriceBook } from "@lite/billing";
import { recordCompletionUsage, type CompletionUsage } from "@lite/telemetry";
import { createTenant, createTestEnv, type TestEnv } from "@lite/testing";

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.close();
});

it("a replayed completion's usage is stored once and billed once", async () => {
  const tenantId = (await createTenant(env.db)).tenantId;
  await createPriceBook(env.db, {
    currency: "USD",
    effectiveFrom: new Date("2025-03-01T00:00:00Z"),
    prices: [
      { meter: "INPUT_TOKENS", dimension: null, unitPrice: "0.01", unit: "1 token" },
      { meter: "OUTPUT_TOKENS", dimension: null, unitPrice: "0.02", unit: "1 token" },
      { meter: "EXPERT_CALLS", dimension: null, unitPrice: "0.001", unit: "1 call" },
      { meter: "TIERSET_ACTIVATIONS", dimension: "DEEP", unitPrice: "0.5", unit: "1 activation" },
    ],
  });
  const usage: CompletionUsage = {
    tenantId,
    completionId: "cmp_replayed0000000000000001",
    inputTokens: 10,
    outputTokens: 20,
    expertCallsByTier: { "tiny.t0": 300, "tiny.t1": 40, "tiny.t2": 0 },
    mode: "DEEP",
    occurredAt: new Date("2025-03-10T00:00:00Z"),
  };
  expect(await recordCompletionUsage(env.db, usage)).toBe(5); // input, output, 2 tiers with calls, the activation
  // the replay (another worker, after a SIGKILL) finishes the same completion again, even with other counts
  expect(await recordCompletionUsage(env.db, usage)).toBe(0);
  expect(
    await recordCompletionUsage(env.db, { ...usage, outputTokens: 21, occurredAt: new Date("2025-03-11T00:00:00Z") }),
  ).toBe(0);
  const rows = await env.db.usageEvent.findMany({
    where: { completionId: usage.completionId },
    orderBy: { idempotencyKey: "asc" },
  });
  expect(rows.map((r) => [r.idempotencyKey, r.quantity])).toEqual([
    [`${usage.completionId}:EXPERT_CALLS:tiny.t0`, 300n],
    [`${usage.completionId}:EXPERT_CALLS:tiny.t1`, 40n],
    [`${usage.completionId}:INPUT_TOKENS:`, 10n],
    [`${usage.completionId}:OUTPUT_TOKENS:`, 20n],
    [`${usage.completionId}:TIERSET_ACTIVATIONS:DEEP`, 1n],
  ]);
  const inv = await tenantInvoice(env.db, tenantId, { period: "2025-03", now: new Date("2025-04-01T00:00:00Z") });
  if (!inv.ok) throw inv.error;
  // 10 × 0.01 + 20 × 0.02 + 300 × 0.001 + 40 × 0.001 + 1 × 0.5
  expect(inv.value.total).toBe("1.34");
  expect(inv.value.lines.map((l) => [l.meter, l.dimension, l.quantity, l.amount])).toEqual([
    ["INPUT_TOKENS", null, 10n, "0.10"],
    ["OUTPUT_TOKENS", null, 20n, "0.40"],
    ["EXPERT_CALLS", "tiny.t0", 300n, "0.30"],
    ["EXPERT_CALLS", "tiny.t1", 40n, "0.04"],
    ["TIERSET_ACTIVATIONS", "DEEP", 1n, "0.50"],
  ]);
});
