import { endUnheld } from "@lite/completions";
import { systemClock } from "@lite/core";
import { TokenStreams } from "@lite/stream";
import { collectTokens, COMPLETION_QUERY, CREATE_COMPLETION, waitFor, wsClient } from "@lite/testing";
import pino from "pino";
import { startE2eStack, type TestStack } from "../support/stack";

type Created = { createCompletion: { id: string } };
type Row = { completion: { status: string; text: string; outputTokens: number; finishReason: string | null } };

/**
 * A completion that fails after it has streamed tokens (issue 9, finding 3): what a client
 * received is what the row holds and what usage bills. The fault is BullMQ's own: with
 * WORKER_MAX_STALLED=1, a job whose worker dies twice comes back with a deferred failure,
 * and the third worker — which has none of its tokens in memory — ends it FAILED.
 */
describe("a completion failed after streaming", () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startE2eStack({ workers: 0, workerEnv: { WORKER_STEP_DELAY_MS: "20", WORKER_MAX_STALLED: "1" } });
  }, 60000);
  afterAll(async () => {
    await stack?.close();
  });

  const input = { prompt: "Fail me late", maxTokens: 140, mode: "BALANCED", seed: "7", temperature: 0.9 };

  async function streamedAtLeast(key: string, n: number): Promise<number> {
    return waitFor(
      `${n} tokens streamed`,
      async () => {
        const len = await stack.env.redis.xlen(key);
        return len >= n ? len : undefined;
      },
      { timeoutMs: 30000, everyMs: 10 },
    );
  }

  async function killWhenStreamed(key: string, n: number, id: string): Promise<void> {
    const w = await stack.spawnWorker({ id });
    await streamedAtLeast(key, n);
    w.kill("SIGKILL");
    expect(await w.exited).toBe("SIGKILL");
  }

  it("bills what the client received: N tokens, a final event at N, the row N tokens with the same text; a second ending bills nothing more", async () => {
    const t = await stack.tenant();
    const id = (await t.http.ok<Created>(CREATE_COMPLETION, { input })).createCompletion.id;
    const key = stack.env.keys.completionStream(t.tenantId, id);
    await killWhenStreamed(key, 20, "worker-a"); // stall 1: back to its queue
    const first = await stack.env.redis.xlen(key);
    await killWhenStreamed(key, first + 10, "worker-b"); // stall 2: past WORKER_MAX_STALLED
    await stack.spawnWorker({ id: "worker-c" });

    const row = await waitFor(
      "the completion to fail",
      async () => {
        const q = await t.http.ok<Row>(COMPLETION_QUERY, { id });
        return q.completion.status === "FAILED" ? q.completion : undefined;
      },
      { timeoutMs: 40000 },
    );

    const ws = wsClient(stack.api.url, t.secret);
    const events = await collectTokens(ws, id, 0);
    await ws.dispose();
    const tokens = events.filter((e) => !e.done);
    const n = tokens.length;
    expect(n).toBeGreaterThanOrEqual(first + 10);
    expect(tokens.map((e) => e.index)).toEqual([...Array(n).keys()]);
    expect(events[events.length - 1]).toMatchObject({ done: true, index: n, finishReason: "ERROR" });
    expect(row).toMatchObject({ finishReason: "ERROR", outputTokens: n, text: tokens.map((e) => e.text).join("") });

    const billed = async () =>
      (await stack.env.db.usageEvent.findMany({ where: { completionId: id, meter: "OUTPUT_TOKENS" } })).map((u) =>
        Number(u.quantity),
      );
    expect(await billed()).toEqual([n]);

    // The ending run again (here by the API's side, as a cancel of a removed job would): the
    // row, the final event and the bill stay as they are.
    const streams = new TokenStreams({ redis: stack.env.redis, keys: stack.env.keys });
    await endUnheld(
      {
        db: stack.env.db,
        streams,
        admission: stack.admission,
        clock: systemClock,
        log: pino({ level: "silent" }),
      },
      { tenantId: t.tenantId, completionId: id },
      "CANCELLED",
    );
    await streams.close();
    expect(await billed()).toEqual([n]);
    expect((await t.http.ok<Row>(COMPLETION_QUERY, { id })).completion).toEqual(row);
    expect((await stack.env.redis.xrange(key, "-", "+")).length).toBe(n + 1);
    await waitFor("counters released", async () => {
      const u = await stack.admission.usage(t.tenantId);
      return u.concurrent === 0 && u.outstandingTokens === 0 ? u : undefined;
    });
  }, 120000);
});
