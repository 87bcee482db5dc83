import { COMPLETION_QUERY, CREATE_COMPLETION, waitFor } from "@lite/testing";
import { kvBlockBytes, promptKvBytes } from "@lite/manifest";
import { startE2eStack, type TestStack } from "../support/stack";

type Created = { createCompletion: { id: string; status: string } };
type Row = {
  completion: { id: string; status: string; outputTokens: number; finishReason: string | null };
};

/**
 * KV quotas through the API and a real worker on the tiny model (2 layers, d_model 32: one
 * KV block of 16 positions is 8 KiB). Admission refuses a prompt whose KV alone exceeds the
 * tenant's kvCacheBytes, computed as the worker counts it (@lite/manifest promptKvBytes);
 * a prompt exactly at the limit is admitted, gets its first token, and the worker ends it
 * LENGTH when its next token would need more KV than the tenant has.
 */
describe("KV quotas end to end", () => {
  let stack: TestStack;
  const shape = { layers: 2, dModel: 32 };
  const BLOCK = kvBlockBytes(shape);
  beforeAll(async () => {
    stack = await startE2eStack({ workers: 1 });
  }, 60000);
  afterAll(async () => {
    await stack?.close();
  });

  const input = (prompt: string) => ({ prompt, maxTokens: 8, mode: "FAST", seed: "1", temperature: 0 });

  it("refuses a prompt that can never fit with QUOTA_EXCEEDED naming kvCacheBytes, and runs one exactly at the limit", async () => {
    const t = await stack.tenant({ quota: { kvCacheBytes: BigInt(BLOCK) } });
    // BOS + 16 bytes = 17 positions: two blocks
    expect(promptKvBytes(shape, 16)).toBe(2 * BLOCK);
    const refused = await t.http.request<Created>(CREATE_COMPLETION, { input: input("x".repeat(16)) });
    expect(refused.status).toBe(429);
    const e = refused.errors?.[0];
    expect(e?.extensions?.code).toBe("QUOTA_EXCEEDED");
    expect(e?.extensions?.reason).toBe("kvCacheBytes");
    expect(e?.message).toContain(
      `needs ${2 * BLOCK} bytes of KV cache, over the tenant's kvCacheBytes limit (${BLOCK})`,
    );
    expect(await stack.env.db.completion.count({ where: { tenantId: t.tenantId } })).toBe(0);

    // BOS + 15 bytes = 16 positions: exactly one block, the limit
    expect(promptKvBytes(shape, 15)).toBe(BLOCK);
    const ok = await t.http.request<Created>(CREATE_COMPLETION, { input: input("x".repeat(15)) });
    expect(ok.errors).toBeUndefined();
    const row = await waitFor(
      "the at-limit completion to end",
      async () => {
        const q = await t.http.ok<Row>(COMPLETION_QUERY, { id: ok.data!.createCompletion.id });
        return q.completion.status === "QUEUED" || q.completion.status === "RUNNING" ? undefined : q.completion;
      },
      { timeoutMs: 30000 },
    );
    // its first token fits; a second would need a second block of KV
    expect(row).toMatchObject({ status: "COMPLETED", finishReason: "LENGTH", outputTokens: 1 });
  }, 60000);

  it("the limit is the tenant's own: another tenant with room runs the same prompt to maxTokens", async () => {
    const t = await stack.tenant({ quota: { kvCacheBytes: BigInt(4 * BLOCK) } });
    const ok = await t.http.request<Created>(CREATE_COMPLETION, { input: input("x".repeat(16)) });
    expect(ok.errors).toBeUndefined();
    const row = await waitFor(
      "the completion to end",
      async () => {
        const q = await t.http.ok<Row>(COMPLETION_QUERY, { id: ok.data!.createCompletion.id });
        return q.completion.status === "QUEUED" || q.completion.status === "RUNNING" ? undefined : q.completion;
      },
      { timeoutMs: 30000 },
    );
    expect(row.status).toBe("COMPLETED");
    expect(row.outputTokens).toBeGreaterThan(1);
  }, 60000);
});
