/**
 * reconcilePeriod over completion rows on real PostgreSQL: every completion is checked
 * whatever the page size (1, one under the count, the count, above it); queued ones are
 * counted as in flight; unbilled failures without tokens pass; usage for a missing
 * completion is named.
 */
import { reconcilePeriod, periodOf, type StreamTokenCounter } from "@lite/billing";
import { newId, type CompletionStatus } from "@lite/core";
import { recordCompletionUsage } from "@lite/telemetry";
import { createTenant, createTestEnv, type TestEnv } from "@lite/testing";

let env: TestEnv;
let tenantId: string;
const finishedAt = new Date("2025-05-20T10:00:00Z");
const PERIOD = periodOf(finishedAt);
const noStreams: StreamTokenCounter = { streamedTokens: async () => null };

async function completion(status: CompletionStatus, outputTokens: number, billed: boolean): Promise<string> {
  const id = newId("completion");
  await env.db.completion.create({
    data: {
      id,
      tenantId,
      modelId: "tiny",
      mode: "FAST",
      tierSet: ["tiny.t0"],
      seed: "1",
      prompt: "p",
      promptTokens: 3,
      maxTokens: 64,
      status,
      outputTokens,
      finishedAt: status === "QUEUED" ? null : finishedAt,
    },
  });
  if (billed)
    await recordCompletionUsage(env.db, {
      tenantId,
      completionId: id,
      inputTokens: 3,
      outputTokens,
      expertCallsByTier: { "tiny.t0": outputTokens * 2 },
      mode: "FAST",
      occurredAt: finishedAt,
    });
  return id;
}

beforeAll(async () => {
  env = await createTestEnv();
  tenantId = (await createTenant(env.db)).tenantId;
  for (let i = 1; i <= 4; i++) await completion("COMPLETED", i * 5, true);
  await completion("CANCELLED", 2, true);
  await completion("FAILED", 0, false); // failed before it ran: not billed, nothing to bill
  await completion("QUEUED", 0, false);
});

afterAll(async () => {
  await env?.close();
});

it.each([1, 5, 6, 7, 500])("checks every completion with page size %i", async (pageSize) => {
  const r = await reconcilePeriod(env.db, noStreams, PERIOD, { pageSize });
  expect(r).toEqual({ period: PERIOD, completionsChecked: 6, usageEvents: 5 * 4, inFlight: 0, mismatches: [] });
});

it("names usage of a completion that does not exist, and counts one in flight", async () => {
  const ghost = "cmp_ghost00000000000000000001";
  await recordCompletionUsage(env.db, {
    tenantId,
    completionId: ghost,
    inputTokens: 1,
    outputTokens: 1,
    expertCallsByTier: {},
    mode: "FAST",
    occurredAt: finishedAt,
  });
  const queued = await env.db.completion.findFirstOrThrow({ where: { status: "QUEUED" } });
  await recordCompletionUsage(env.db, {
    tenantId,
    completionId: queued.id,
    inputTokens: 3,
    outputTokens: 0,
    expertCallsByTier: {},
    mode: "FAST",
    occurredAt: finishedAt,
  });
  const r = await reconcilePeriod(env.db, noStreams, PERIOD, { pageSize: 2 });
  expect(r.inFlight).toBe(1);
  expect(r.completionsChecked).toBe(6);
  expect(r.mismatches).toEqual([
    {
      kind: "ORPHAN_USAGE",
      completionId: ghost,
      tenantId,
      detail: "3 usage event(s) for a completion that does not exist",
    },
  ]);
});
