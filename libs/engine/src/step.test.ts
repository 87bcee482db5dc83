import { CATCH_UP_ROWS_PER_STEP } from "./step";
import { EngineHarness, tokenAt } from "./testing/engine-fakes";

/**
 * A job of tenant "a" streams (layers: 4); the next step then waits in its gate until a job
 * of tenant "b", enqueued only once a step waits there, is held (added to the batch): b
 * arrives while that step is in progress.
 */
async function arriveDuringStep(h: EngineHarness, arrival: { maxTokens: number }) {
  h.batch.layers = 4;
  const first = h.enqueue("a", { maxTokens: 10_000 });
  h.engine.start();
  await h.until("first streaming", () => (h.tokens.streams.get(first.completionId)?.length ?? 0) >= 2);
  const wanted: { id?: string } = {};
  let gateReached!: () => void;
  const reached = new Promise<void>((r) => (gateReached = r));
  h.batch.stepGate = async () => {
    gateReached();
    while (wanted.id === undefined || !h.batch.added.includes(wanted.id)) await new Promise((r) => setTimeout(r, 1));
  };
  await reached;
  const job = h.enqueue("b", arrival);
  wanted.id = job.completionId;
  return { first, arrival: job };
}

describe("step and flush", () => {
  let h: EngineHarness;
  afterEach(async () => {
    await h.engine.stop();
    expect(h.tokens.violations).toEqual([]);
  });

  it("cancel mid-step: the token produced while the cancel was found is dropped; row, stream and admission agree", async () => {
    h = new EngineHarness({ stepDelayMs: 2, shutdownGraceMs: 0 });
    const job = h.enqueue("a", { maxTokens: 10_000 });
    const id = job.completionId;
    h.engine.start();
    await h.until("three tokens streamed", () => (h.tokens.streams.get(id)?.length ?? 0) >= 3);
    h.work.cancelledIds.add(id);
    await h.until("job done", () => job.done);
    await h.until("finalised", () => h.finalisationOf(id).length === 5);

    const n = h.tokens.streams.get(id)!.length;
    expect(n).toBeLessThan(10_000);
    // one more token was generated than emitted: the step's output after the cancel check
    expect(h.batch.generated.get(id)).toBe(n + 1);
    expect(h.store.finalised).toEqual([
      expect.objectContaining({
        completionId: id,
        status: "CANCELLED",
        finishReason: "CANCELLED",
        outputTokens: n,
        text: h.tokens.text(id),
      }),
    ]);
    expect(h.tokens.done.get(id)).toEqual({ index: n, tokens: n, finishReason: "CANCELLED" });
    expect(h.admission.settled.get(id)).toBe(n);
    expect(h.usage.records[0].outputTokens).toBe(n);
    expect(job.completed).toBe(1);
    expect(job.failures).toEqual([]);
    expect(h.batch.removed).toEqual([id]);
    expect(h.engine.held).toBe(0);
  });

  it("a flush that fails transiently is retried until it succeeds: every token once, in order, then the finalisation", async () => {
    h = new EngineHarness();
    h.faults.inject("append", 3);
    h.faults.inject("cancelled", 1);
    h.faults.inject("usage", 1);
    h.faults.inject("finalise", 2);
    const job = h.enqueue("a", { maxTokens: 6 });
    const id = job.completionId;
    h.engine.start();
    await h.until("job done", () => job.done, 10_000);

    expect(h.faults.failed).toEqual(
      new Map([
        ["append", 3],
        ["cancelled", 1],
        ["usage", 1],
        ["finalise", 2],
      ]),
    );
    expect(h.tokens.streams.get(id)).toEqual([0, 1, 2, 3, 4, 5].map((i) => tokenAt(id, i)));
    // retries re-sent tokens (idempotent by index), never skipped one
    expect(h.tokens.appended.get(id)!.length).toBeGreaterThan(6);
    expect(h.finalisationOf(id)).toEqual(["usage", "finalise", "finish", "settle", "complete"]);
    expect(h.store.finalised).toEqual([
      expect.objectContaining({
        status: "COMPLETED",
        finishReason: "LENGTH",
        outputTokens: 6,
        text: h.tokens.text(id),
      }),
    ]);
    expect(h.tokens.done.get(id)).toEqual({ index: 6, tokens: 6, finishReason: "LENGTH" });
    expect(h.admission.progressed.get(id)).toBe(6);
    // Charges are not idempotent: a retried flush charges its step again, so the dispatcher's
    // virtual time may run ahead of the tokens (never behind). Here: 6 tokens × cost 1.5, plus
    // the first step's 3 failed attempts.
    expect(h.work.charged.get("a")).toBeCloseTo(6 * 1.5 + 3 * 1.5);
    expect(h.warnings.some((w) => w.msg === "transient failure, retrying")).toBe(true);
  });

  it("a sequence that has not run yet gets its first token in a step of its own", async () => {
    h = new EngineHarness({ stepDelayMs: 2, shutdownGraceMs: 0 });
    const first = h.enqueue("a", { maxTokens: 10_000 });
    h.engine.start();
    await h.until("first streaming", () => (h.tokens.streams.get(first.completionId)?.length ?? 0) >= 2);
    const second = h.enqueue("b", { maxTokens: 10_000 });
    await h.until("second streaming", () => (h.tokens.streams.get(second.completionId)?.length ?? 0) >= 2);
    const k = h.batch.steps.findIndex((s) => s.includes(second.completionId));
    // its own small step, then the rest of that round, then both together
    expect(h.batch.steps.slice(k, k + 3)).toEqual([
      [second.completionId],
      [first.completionId],
      expect.arrayContaining([first.completionId, second.completionId]),
    ]);
  });

  it("a request held while a step runs takes its first step between that step's layers, not after it", async () => {
    h = new EngineHarness({ stepDelayMs: 2, shutdownGraceMs: 0 });
    const { first, arrival: second } = await arriveDuringStep(h, { maxTokens: 10_000 });
    await h.until("second streaming", () => (h.tokens.streams.get(second.completionId)?.length ?? 0) >= 2);
    const k = h.batch.steps.findIndex((s) => s.includes(second.completionId));
    // begun inside the step in progress (which holds only the first), alone
    expect(h.batch.steps[k]).toEqual([second.completionId]);
    expect(h.batch.steps[k - 1]).toEqual([first.completionId]);
    expect(h.batch.nested[0]).toEqual([second.completionId]);
    expect(h.batch.nested).toHaveLength(1);
    // then both in the full steps; every token once, in order
    expect(h.batch.steps[k + 1]).toEqual(expect.arrayContaining([first.completionId, second.completionId]));
    const streamed = h.tokens.streams.get(second.completionId)!;
    expect(streamed.map((t) => t.index)).toEqual([...streamed.keys()]);
    expect(streamed.map((t) => t.tokenId)).toEqual(streamed.map((t) => tokenAt(second.completionId, t.index).tokenId));
  });

  it("a request that ends in its arrival step (maxTokens 1) leaves the batch there: one token, finalised once, the step in progress unharmed", async () => {
    h = new EngineHarness({ stepDelayMs: 2, shutdownGraceMs: 0 });
    const { first, arrival: short } = await arriveDuringStep(h, { maxTokens: 1 });
    await h.until("short done", () => short.done);
    h.batch.stepGate = undefined;
    await h.until("first goes on", () => (h.tokens.streams.get(first.completionId)?.length ?? 0) >= 6);

    const id = short.completionId;
    expect(h.batch.nested).toEqual([[id]]);
    expect(h.tokens.streams.get(id)).toEqual([tokenAt(id, 0)]);
    expect(h.tokens.done.get(id)).toEqual({ index: 1, tokens: 1, finishReason: "LENGTH" });
    expect(h.finalisationOf(id)).toEqual(["usage", "finalise", "finish", "settle", "complete"]);
    expect(h.store.finalised).toEqual([
      expect.objectContaining({ completionId: id, status: "COMPLETED", outputTokens: 1, text: h.tokens.text(id) }),
    ]);
    expect(h.batch.removed).toEqual([id]);
    expect(short.completed).toBe(1);
    // never in a full step, and the first's tokens stay whole and in order
    expect(h.batch.steps.filter((s) => s.includes(id))).toEqual([[id]]);
    const streamed = h.tokens.streams.get(first.completionId)!;
    expect(streamed.map((t) => t.index)).toEqual([...streamed.keys()]);
  });

  it("a request cancelled right after its arrival step ends CANCELLED with what it streamed: row, stream, usage and admission agree", async () => {
    h = new EngineHarness({ stepDelayMs: 2, shutdownGraceMs: 0 });
    const { arrival } = await arriveDuringStep(h, { maxTokens: 10_000 });
    const id = arrival.completionId;
    await h.until("arrival stepped", () => h.batch.nested.length > 0);
    h.work.cancelledIds.add(id);
    h.batch.stepGate = undefined;
    await h.until("arrival done", () => arrival.done);
    await h.until("finalised", () => h.finalisationOf(id).length === 5);

    expect(h.batch.nested).toEqual([[id]]);
    const n = h.tokens.streams.get(id)!.length;
    expect(h.tokens.streams.get(id)).toEqual([...Array(n).keys()].map((i) => tokenAt(id, i)));
    expect(h.store.finalised).toEqual([
      expect.objectContaining({ completionId: id, status: "CANCELLED", outputTokens: n, text: h.tokens.text(id) }),
    ]);
    expect(h.tokens.done.get(id)).toEqual({ index: n, tokens: n, finishReason: "CANCELLED" });
    expect(h.admission.settled.get(id)).toBe(n);
    expect(h.usage.records.find((u) => u.completionId === id)?.outputTokens).toBe(n);
    expect(arrival.failures).toEqual([]);
    expect(h.batch.removed).toEqual([id]);
  });

  it("a tenant at its hold cap gets no first step of its own: its next completion joins the full step", async () => {
    h = new EngineHarness({ stepDelayMs: 2, shutdownGraceMs: 0 });
    // batch 4, one tenant: its hold cap is 4 (hold-caps.ts)
    const running = [0, 1, 2].map(() => h.enqueue("a", { maxTokens: 10_000 }));
    h.engine.start();
    await h.until("three streaming", () =>
      running.every((j) => (h.tokens.streams.get(j.completionId)?.length ?? 0) >= 2),
    );
    const fourth = h.enqueue("a", { maxTokens: 10_000 });
    await h.until("fourth streaming", () => (h.tokens.streams.get(fourth.completionId)?.length ?? 0) >= 2);
    const k = h.batch.steps.findIndex((s) => s.includes(fourth.completionId));
    expect(h.batch.steps[k]).toHaveLength(4);
    // another tenant's first completion still gets its own small step
    const other = h.enqueue("b", { maxTokens: 10_000 });
    await h.until("other streaming", () => (h.tokens.streams.get(other.completionId)?.length ?? 0) >= 2);
    const j = h.batch.steps.findIndex((s) => s.includes(other.completionId));
    expect(h.batch.steps[j]).toEqual([other.completionId]);
  });

  it("a tenant whose jobs are still starting counts them towards its cap: the one held first joins the full step", async () => {
    h = new EngineHarness({ stepDelayMs: 2, shutdownGraceMs: 0 });
    // batch 4, one tenant: its hold cap is 4 (hold-caps.ts)
    const running = [0, 1].map(() => h.enqueue("a", { maxTokens: 10_000 }));
    h.engine.start();
    await h.until("two streaming", () =>
      running.every((j) => (h.tokens.streams.get(j.completionId)?.length ?? 0) >= 2),
    );
    // two more of its completions are taken together; the second one's start is slow
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const [third, fourth] = [0, 1].map(() => h.enqueue("a", { maxTokens: 10_000 }));
    h.tokens.resumeGate = (id) => (id === fourth.completionId ? slow : Promise.resolve());
    await h.until("third streaming", () => (h.tokens.streams.get(third.completionId)?.length ?? 0) >= 2);
    release();
    await h.until("fourth streaming", () => (h.tokens.streams.get(fourth.completionId)?.length ?? 0) >= 2);
    const k = h.batch.steps.findIndex((s) => s.includes(third.completionId));
    expect(h.batch.steps[k]).toHaveLength(3);
    const j = h.batch.steps.findIndex((s) => s.includes(fourth.completionId));
    expect(h.batch.steps[j]).toHaveLength(4);
  });

  it("a tenant below its hold cap (a light one) gets a first step for a new completion while another of its streams", async () => {
    h = new EngineHarness({ stepDelayMs: 2, shutdownGraceMs: 0 });
    // batch 4, two tenants of weight 1: each one's cap is ceil(4 / 2) + 1 = 3
    const heavy = [0, 1, 2].map(() => h.enqueue("heavy", { maxTokens: 10_000 }));
    const light = h.enqueue("light", { maxTokens: 10_000 });
    h.engine.start();
    await h.until("all streaming", () =>
      [...heavy, light].every((j) => (h.tokens.streams.get(j.completionId)?.length ?? 0) >= 2),
    );
    const next = h.enqueue("light", { maxTokens: 10_000 });
    await h.until("next streaming", () => (h.tokens.streams.get(next.completionId)?.length ?? 0) >= 2);
    const k = h.batch.steps.findIndex((s) => s.includes(next.completionId));
    expect(h.batch.steps[k]).toEqual([next.completionId]);
  });

  it("without first-token steps a new sequence waits for the next full step", async () => {
    h = new EngineHarness({ stepDelayMs: 2, firstTokenSteps: false, shutdownGraceMs: 0 });
    const first = h.enqueue("a", { maxTokens: 10_000 });
    h.engine.start();
    await h.until("first streaming", () => (h.tokens.streams.get(first.completionId)?.length ?? 0) >= 2);
    const second = h.enqueue("b", { maxTokens: 10_000 });
    await h.until("second streaming", () => (h.tokens.streams.get(second.completionId)?.length ?? 0) >= 2);
    const k = h.batch.steps.findIndex((s) => s.includes(second.completionId));
    expect(h.batch.steps[k]).toHaveLength(2);
  });

  it("a handle that announces steps is told `entering` before its first step (awaited) and `stepped` after it, once", async () => {
    h = new EngineHarness({ stepDelayMs: 1, shutdownGraceMs: 0 });
    const job = h.enqueue("a", { maxTokens: 5 });
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    Object.assign(job, {
      entering: async () => {
        seen.push(`entering:${h.batch.steps.length}`);
        await gate; // the step waits for the announcement
      },
      stepped: () => seen.push(`stepped:${h.batch.steps.length}`),
    });
    h.engine.start();
    await h.until("the announcement", () => seen.length === 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(h.batch.steps).toEqual([]); // nothing stepped while it was pending
    release();
    await h.until("job done", () => job.done);
    expect(seen).toEqual(["entering:0", "stepped:1"]);
  });

  it("a takeover's replays resume one after another, shortest first, several per step within the catch-up budget", async () => {
    h = new EngineHarness({ batchSize: 8 });
    // Jobs of a dead worker: their streams hold 300, 10 and 100 tokens (+ BOS and 5 prompt
    // rows each: 306, 16 and 106 catch-up rows); a fresh job beside them.
    const held = { long: 300, short: 10, mid: 100 };
    const ids = Object.fromEntries(
      Object.entries(held).map(([name, n]) => {
        const job = h.enqueue("a", { maxTokens: 400, firstStart: false, status: "RUNNING" });
        const id = job.completionId;
        h.tokens.streams.set(
          id,
          [...Array(n).keys()].map((i) => tokenAt(id, i)),
        );
        return [name, id];
      }),
    );
    const fresh = h.enqueue("b", { maxTokens: 400 }).completionId;
    // Held together (their start checks answer together, as a takeover's overlapping starts
    // may): which step each replay takes is then the catch-up budget's choice alone.
    const starting: Array<() => void> = [];
    h.tokens.resumeGate = () =>
      starting.length >= 4
        ? Promise.resolve()
        : new Promise<void>((go) => {
            starting.push(go);
            if (starting.length === 4) for (const g of starting) g();
          });
    h.engine.start();
    const all = [...Object.values(ids), fresh];
    await h.until("every job done", () => all.every((id) => h.tokens.done.has(id)), 20_000);

    const firstStep = (id: string) => h.batch.steps.findIndex((step) => step.includes(id));
    // 16 + 106 rows fit the budget together; the long one (306 more) takes the next step.
    expect(firstStep(ids.short)).toBe(firstStep(ids.mid));
    expect(firstStep(ids.long)).toBe(firstStep(ids.mid) + 1);
    expect(CATCH_UP_ROWS_PER_STEP).toBeLessThan(16 + 106 + 306);
    // each one resumed after its stream and produced every later token once, in order
    for (const [name, id] of Object.entries(ids)) {
      expect(h.batch.resumedFrom.get(id)).toBe(held[name as keyof typeof held]);
      expect(h.tokens.streams.get(id)).toEqual([...Array(400).keys()].map((i) => tokenAt(id, i)));
    }
  });
});

describe("metrics", () => {
  it("output tokens are counted per tenant, once per tenant and step, equal to what each tenant's streams hold", async () => {
    const h = new EngineHarness({ batchSize: 8 });
    const jobs = [
      ...Array.from({ length: 3 }, () => h.enqueue("a", { maxTokens: 7 })),
      ...Array.from({ length: 2 }, () => h.enqueue("b", { maxTokens: 5 })),
    ];
    h.engine.start();
    await h.until("all done", () => jobs.every((j) => j.done));
    await h.engine.stop();

    const streamed = (tenant: string) =>
      jobs
        .filter((j) => j.tenantId === tenant)
        .reduce((n, j) => n + (h.tokens.streams.get(j.completionId)?.length ?? 0), 0);
    expect(streamed("a")).toBe(21);
    expect(streamed("b")).toBe(10);
    expect(h.metrics.tokens).toEqual(
      new Map([
        ["a", 21],
        ["b", 10],
      ]),
    );
    // at most one update per tenant and step (not one per token)
    expect(h.metrics.tokenUpdates).toBeLessThanOrEqual(2 * h.metrics.steps);
    expect(h.metrics.tokenUpdates).toBeLessThan(31);
    expect(h.metrics.ttfts.sort()).toEqual(["a", "a", "a", "b", "b"]);
    expect(h.metrics.finished.sort()).toEqual(["a", "a", "a", "b", "b"]);
  });
});
