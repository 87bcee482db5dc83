import {
  collectTokens,
  COMPLETION_QUERY,
  CREATE_COMPLETION,
  untilCompletionEnds,
  waitFor,
  wsClient,
} from "@lite/testing";
import { startE2eStack, type TestStack } from "../support/stack";

type Created = { createCompletion: { id: string } };
type Row = { completion: { status: string; text: string; outputTokens: number; finishReason: string | null } };

describe("a worker killed mid-completion", () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startE2eStack({ workers: 0, workerEnv: { WORKER_STEP_DELAY_MS: "15" } });
  }, 60000);
  afterAll(async () => {
    await stack?.close();
  });

  const input = { prompt: "Resume me", maxTokens: 120, mode: "BALANCED", seed: "7", temperature: 0.9 };

  const finished = (t: { http: TestStack["admin"] }, id: string) => untilCompletionEnds(t.http, id);

  it("is finished by another worker process: same text as an uninterrupted run, no index repeated, usage counted once, counters at zero", async () => {
    const t = await stack.tenant();
    const a = await stack.spawnWorker({ id: "worker-a" });

    // Reference: the same tenant, prompt, seed and TierSet, uninterrupted.
    const ref = (await t.http.ok<Created>(CREATE_COMPLETION, { input })).createCompletion.id;
    const reference = await finished(t, ref);
    expect(reference.outputTokens).toBeGreaterThan(30);

    const id = (await t.http.ok<Created>(CREATE_COMPLETION, { input })).createCompletion.id;
    const streamKey = stack.env.keys.completionStream(t.tenantId, id);
    await waitFor("a third of the tokens", async () => (await stack.env.redis.xlen(streamKey)) >= 30, {
      timeoutMs: 20000,
      everyMs: 10,
    });
    a.kill("SIGKILL");
    expect(await a.exited).toBe("SIGKILL");
    const streamedBeforeCrash = await stack.env.redis.xlen(streamKey);
    expect(streamedBeforeCrash).toBeLessThan(reference.outputTokens);

    const b = await stack.spawnWorker({ id: "worker-b" });
    const row = await finished(t, id);
    expect(row.text).toBe(reference.text);
    expect(row.outputTokens).toBe(reference.outputTokens);

    const ws = wsClient(stack.api.url, t.secret);
    const events = await collectTokens(ws, id, 0);
    await ws.dispose();
    const tokens = events.filter((e) => !e.done);
    expect(tokens.map((e) => e.index)).toEqual([...Array(reference.outputTokens).keys()]);
    expect(tokens.map((e) => e.text).join("")).toBe(reference.text);
    expect(events[events.length - 1]).toMatchObject({ done: true, index: reference.outputTokens });

    const usage = await waitFor("usage", async () => {
      const rows = await stack.env.db.usageEvent.findMany({ where: { completionId: id } });
      return rows.some((r) => r.meter === "OUTPUT_TOKENS") ? rows : undefined;
    });
    const output = usage.filter((u) => u.meter === "OUTPUT_TOKENS");
    expect(output).toHaveLength(1);
    expect(Number(output[0].quantity)).toBe(reference.outputTokens);
    // expert calls equal the uninterrupted run's (the replay recomputes, it does not recount)
    const refCalls = await stack.env.db.usageEvent.findMany({
      where: { completionId: ref, meter: "EXPERT_CALLS" },
      orderBy: { dimension: "asc" },
    });
    const calls = usage
      .filter((u) => u.meter === "EXPERT_CALLS")
      .sort((x, y) => (x.dimension! < y.dimension! ? -1 : 1));
    expect(calls.map((c) => [c.dimension, c.quantity])).toEqual(refCalls.map((c) => [c.dimension, c.quantity]));

    await waitFor("counters released", async () => {
      const u = await stack.admission.usage(t.tenantId);
      return u.concurrent === 0 && u.outstandingTokens === 0;
    });
    expect(b.output()).toContain("resuming a re-dispatched completion");
  }, 90000);

  it("SIGTERM: the worker finishes what it runs and exits 0", async () => {
    const t = await stack.tenant();
    // The only worker, with a grace no busy machine outlasts (E2E_WORKER_ENV's 5 s is for crash
    // tests): this test is about finishing, not about how long it takes.
    await Promise.all(stack.workers.map((x) => x.stop(20000)));
    const w = await stack.spawnWorker({ id: "worker-term", env: { WORKER_SHUTDOWN_GRACE_MS: "60000" } });
    const id = (await t.http.ok<Created>(CREATE_COMPLETION, { input: { ...input, maxTokens: 40 } })).createCompletion
      .id;
    await waitFor(
      "running",
      async () => (await stack.env.redis.xlen(stack.env.keys.completionStream(t.tenantId, id))) >= 2,
      { timeoutMs: 20000, everyMs: 10 },
    );
    expect(await w.stop(90000)).toBe(0);
    const q = await t.http.ok<Row>(COMPLETION_QUERY, { id });
    expect(q.completion.status).toBe("COMPLETED");
    expect(q.completion.outputTokens).toBeGreaterThan(0);
  }, 180000);
});
