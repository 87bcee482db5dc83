/**
 * Tenant.metrics' byte gauges while a completion runs on a real worker (steps slowed so it
 * spans several flushes): its KV bytes and HOT/WARM expert bytes show while its sequence is
 * live, the KV bytes go back to 0 once it has ended, and another tenant's stay 0 throughout.
 * KV bytes come first (its first step grows the KV before its experts are leased; on a fresh
 * worker that step waits on their loads), so the gauges are read until both show.
 */
import { collectTokens, CREATE_COMPLETION, waitFor, wsClient, type StackTenant } from "@lite/testing";
import { startE2eStack, type TestStack } from "../support/stack";

const BYTES = "query($id: ID!) { tenant(id: $id) { metrics { hotBytes warmBytes kvBytes outputTokens } } }";
type Bytes = { hotBytes: string; warmBytes: string; kvBytes: string; outputTokens: string };

let stack: TestStack;
beforeAll(async () => {
  stack = await startE2eStack({ workers: 1, workerEnv: { WORKER_STEP_DELAY_MS: "40" } });
}, 90000);
afterAll(async () => {
  await stack?.close();
});

const bytesOf = async (t: StackTenant) =>
  (await t.http.ok<{ tenant: { metrics: Bytes } }>(BYTES, { id: t.tenantId })).tenant.metrics;

it("a live sequence's KV and expert bytes show, and the KV bytes are released when it ends", async () => {
  const t = await stack.tenant();
  const idle = await stack.tenant();
  const r = await t.http.ok<{ createCompletion: { id: string } }>(CREATE_COMPLETION, {
    input: { prompt: "a long one", maxTokens: 120, mode: "FAST", seed: "3" },
  });
  const ws = wsClient(stack.api.url, t.secret);
  const streaming = collectTokens(ws, r.createCompletion.id);
  try {
    const live = await waitFor(
      "KV and HOT bytes while the sequence runs",
      async () => {
        const m = await bytesOf(t);
        return BigInt(m.kvBytes) > 0n && BigInt(m.hotBytes) > 0n ? m : undefined;
      },
      { timeoutMs: 20000, everyMs: 200 },
    );
    expect(BigInt(live.warmBytes)).toBeGreaterThanOrEqual(BigInt(live.hotBytes));
    expect(await bytesOf(idle)).toEqual({ hotBytes: "0", warmBytes: "0", kvBytes: "0", outputTokens: "0" });
    const events = await streaming;
    const tokens = events.filter((e) => !e.done).length;
    const ended = await waitFor(
      "KV bytes released and every token counted",
      async () => {
        const m = await bytesOf(t);
        return m.kvBytes === "0" && Number(m.outputTokens) === tokens ? m : undefined;
      },
      { everyMs: 200 },
    );
    expect(BigInt(ended.hotBytes)).toBeGreaterThan(0n);
  } finally {
    await ws.dispose();
  }
});
