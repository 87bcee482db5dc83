import { endCompletion, endSteps, endUnheld, streamedOutput } from "@lite/completions";
import { systemClock } from "@lite/core";
import { TokenStreams } from "@lite/stream";
import { recordCompletionUsage } from "@lite/telemetry";
import { collectTokens, COMPLETION_QUERY, CREATE_COMPLETION, waitFor, wsClient } from "@lite/testing";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { startE2eStack, type TestStack } from "../support/stack";

type Created = { createCompletion: { id: string } };
type Row = { completion: { status: string; text: string; outputTokens: number; finishReason: string | null } };

/**
 * A completion that fails after it has streamed tokens (issue 9, finding 3): what a client
 * received is what the row holds and what usage bills. The fault: the worker that streamed
 * is killed, and the job's replay reaches a worker whose model directory is empty, which ends
 * it FAILED at start — with none of its tokens in memory.
 */
describe("a completion failed after streaming", () => {
  let stack: TestStack;
  let emptyModelDir: string;
  beforeAll(async () => {
    emptyModelDir = await mkdtemp(path.join(os.tmpdir(), "no-models-"));
    stack = await startE2eStack({ workers: 0, workerEnv: { WORKER_STEP_DELAY_MS: "20" } });
  }, 60000);
  afterAll(async () => {
    await stack?.close();
    await rm(emptyModelDir, { recursive: true, force: true });
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

  it("bills what the client received: N tokens, a final event at N, the row N tokens with the same text; a second ending bills nothing more", async () => {
    const t = await stack.tenant();
    const id = (await t.http.ok<Created>(CREATE_COMPLETION, { input })).createCompletion.id;
    const key = stack.env.keys.completionStream(t.tenantId, id);
    const a = await stack.spawnWorker({ id: "worker-a" });
    await streamedAtLeast(key, 20);
    a.kill("SIGKILL");
    expect(await a.exited).toBe("SIGKILL");
    const streamed = await stack.env.redis.xlen(key);
    await stack.spawnWorker({ id: "worker-b", env: { MODEL_DIR: emptyModelDir, WORKER_PRELOAD_MODELS: "" } });

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
    expect(n).toBe(streamed);
    expect(tokens.map((e) => e.index)).toEqual([...Array(n).keys()]);
    expect(events[events.length - 1]).toMatchObject({ done: true, index: n, finishReason: "ERROR" });
    expect(row).toMatchObject({ finishReason: "ERROR", outputTokens: n, text: tokens.map((e) => e.text).join("") });

    const billed = async () =>
      (await stack.env.db.usageEvent.findMany({ where: { completionId: id, meter: "OUTPUT_TOKENS" } })).map((u) =>
        Number(u.quantity),
      );
    expect(await billed()).toEqual([n]);

    // The ending run again, by both sides: the worker's (usage from the stream, then
    // endCompletion, as libs/engine finish does) and the API's (endUnheld, as a cancel of a
    // removed job would). The row, the final event and the bill stay as they are.
    const usageRows = await stack.env.db.usageEvent.count({ where: { completionId: id } });
    const streams = new TokenStreams({ redis: stack.env.redis, keys: stack.env.keys });
    const steps = endSteps({ db: stack.env.db, streams, admission: stack.admission });
    const out = await streamedOutput(streams, t.tenantId, id);
    const ref = { tenantId: t.tenantId, completionId: id };
    await recordCompletionUsage(stack.env.db, {
      ...ref,
      inputTokens: 12,
      outputTokens: out.outputTokens,
      expertCallsByTier: {},
      mode: "BALANCED",
      occurredAt: new Date(),
    });
    await endCompletion(steps, { ...ref, finishReason: "ERROR", ...out, finishedAt: new Date() });
    const api = { db: stack.env.db, streams, admission: stack.admission, clock: systemClock };
    await endUnheld({ ...api, log: pino({ level: "silent" }) }, ref, "CANCELLED");
    await streams.close();
    expect(await billed()).toEqual([n]);
    expect(await stack.env.db.usageEvent.count({ where: { completionId: id } })).toBe(usageRows);
    expect((await t.http.ok<Row>(COMPLETION_QUERY, { id })).completion).toEqual(row);
    expect((await stack.env.redis.xrange(key, "-", "+")).length).toBe(n + 1);
    await waitFor("counters released", async () => {
      const u = await stack.admission.usage(t.tenantId);
      return u.concurrent === 0 && u.outstandingTokens === 0 ? u : undefined;
    });
  }, 120000);
});
