/**
 * KV_BYTE_SECONDS (issue 11 item 4): the worker's usage of a completion carries its KV
 * byte-seconds (libs/engine kv-meter.ts) as one event keyed (completion, meter): written
 * once, a replayed finalisation (another worker, another count) adds nothing, another
 * tenant's completion is its own event and its own invoice line, and a completion that held
 * no KV records none.
 */
import { createPriceBook, tenantInvoice } from "@lite/billing";
import { recordCompletionUsage, type CompletionUsage } from "@lite/telemetry";
import { createTenant, createTestEnv, type TestEnv } from "@lite/testing";

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.close();
});

it("records a completion's KV byte-seconds once, per tenant, and bills them once", async () => {
  const a = (await createTenant(env.db)).tenantId;
  const b = (await createTenant(env.db)).tenantId;
  await createPriceBook(env.db, {
    currency: "USD",
    effectiveFrom: new Date("2025-05-01T00:00:00Z"),
    prices: [{ meter: "KV_BYTE_SECONDS", dimension: null, unitPrice: "0.000001", unit: "1 byte-second" }],
  });
  const base = {
    inputTokens: 4,
    outputTokens: 8,
    expertCallsByTier: {},
    mode: "FAST",
    occurredAt: new Date("2025-05-10T00:00:00Z"),
  };
  const ua: CompletionUsage = {
    ...base,
    tenantId: a,
    completionId: "cmp_kvusage00000000000000001",
    kvByteSeconds: 1_500_000,
  };
  const ub: CompletionUsage = {
    ...base,
    tenantId: b,
    completionId: "cmp_kvusage00000000000000002",
    kvByteSeconds: 250_000,
  };
  expect(await recordCompletionUsage(env.db, ua)).toBe(4); // input, output, KV, activation
  // the replay: another worker ends the same completion again, with its own (larger) count
  expect(await recordCompletionUsage(env.db, ua)).toBe(0);
  expect(await recordCompletionUsage(env.db, { ...ua, kvByteSeconds: 9_000_000 })).toBe(0);
  expect(await recordCompletionUsage(env.db, ub)).toBe(4);
  // held no KV (refused before it ran): no KV event
  const none = { ...base, tenantId: b, completionId: "cmp_kvusage00000000000000003", kvByteSeconds: 0 };
  expect(await recordCompletionUsage(env.db, none)).toBe(3);

  const kv = await env.db.usageEvent.findMany({
    where: { meter: "KV_BYTE_SECONDS", tenantId: { in: [a, b] } },
    orderBy: { idempotencyKey: "asc" },
  });
  expect(kv.map((e) => [e.tenantId, e.idempotencyKey, e.dimension, e.quantity])).toEqual([
    [a, `${ua.completionId}:KV_BYTE_SECONDS:`, null, 1_500_000n],
    [b, `${ub.completionId}:KV_BYTE_SECONDS:`, null, 250_000n],
  ]);

  const now = new Date("2025-06-01T00:00:00Z");
  const kvLines = async (tenantId: string) => {
    const inv = await tenantInvoice(env.db, tenantId, { period: "2025-05", now });
    if (!inv.ok) throw inv.error;
    return inv.value.lines.filter((l) => l.meter === "KV_BYTE_SECONDS").map((l) => [l.quantity, l.amount]);
  };
  expect(await kvLines(a)).toEqual([[1_500_000n, "1.50"]]);
  expect(await kvLines(b)).toEqual([[250_000n, "0.25"]]);
});
