import { EngineHarness, FAKE_EOS, tokenAt } from "./testing/engine-fakes";
import { FakeHandle } from "./testing/port-fakes";

describe("job start", () => {
  let h: EngineHarness;
  afterEach(async () => {
    await h.engine.stop();
    expect(h.tokens.violations).toEqual([]);
  });

  it("a first start runs from the payload: no row read, the row marked RUNNING", async () => {
    h = new EngineHarness();
    h.faults.inject("load", 1_000_000); // a row read would never succeed
    const job = h.enqueue("a", { maxTokens: 4 });
    h.engine.start();
    await h.until("job done", () => job.done);
    expect(job.completed).toBe(1);
    expect(h.faults.failed.get("load")).toBeUndefined();
    expect(h.store.markedRunning).toEqual([job.completionId]);
    expect(h.tokens.text(job.completionId)).toBe([0, 1, 2, 3].map((i) => tokenAt(job.completionId, i).text).join(""));
  });

  it("a resumed job continues after the tokens its stream holds, producing none of them again", async () => {
    h = new EngineHarness();
    const job = h.enqueue("a", { maxTokens: 10, firstStart: false, status: "RUNNING" });
    const id = job.completionId;
    // an earlier worker streamed tokens 0..4 and died
    h.tokens.streams.set(
      id,
      [0, 1, 2, 3, 4].map((i) => tokenAt(id, i)),
    );
    h.engine.start();
    await h.until("job done", () => job.done);
    await h.until("finalised", () => h.finalisationOf(id).length === 5);

    expect(h.batch.resumedFrom.get(id)).toBe(5);
    expect(h.batch.generated.get(id)).toBe(10);
    expect(h.batch.steps.filter((ids) => ids.includes(id))).toHaveLength(5);
    expect(h.tokens.appended.get(id)).toEqual([5, 6, 7, 8, 9]);
    expect(h.tokens.streams.get(id)).toEqual([...Array(10).keys()].map((i) => tokenAt(id, i)));
    // the row and the usage count the whole output, once
    expect(h.store.finalised).toEqual([
      expect.objectContaining({ status: "COMPLETED", outputTokens: 10, text: h.tokens.text(id) }),
    ]);
    expect(h.usage.records.map((u) => u.outputTokens)).toEqual([10]);
    expect(h.tokens.done.get(id)).toEqual({ index: 10, tokens: 10, finishReason: "LENGTH" });
    expect(h.store.markedRunning).toEqual([]); // already RUNNING
  });

  it("a resumed job cancelled at its first step ends after what the stream already holds", async () => {
    h = new EngineHarness();
    const job = h.enqueue("a", { maxTokens: 1_000, firstStart: false, status: "RUNNING" });
    const id = job.completionId;
    h.tokens.streams.set(
      id,
      [...Array(20).keys()].map((i) => tokenAt(id, i)),
    );
    h.batch.beforeStep = () => {
      if ((h.batch.generated.get(id) ?? 0) >= 2) h.work.cancelledIds.add(id);
    };
    h.engine.start();
    await h.until("job done", () => job.done);
    await h.until("finalised", () => h.finalisationOf(id).length === 5);

    const row = h.store.finalised[0];
    const n = row.outputTokens!;
    expect(row.finishReason).toBe("CANCELLED");
    // not cancelled before it caught up with the stream: its final event follows index 19
    expect(n).toBeGreaterThanOrEqual(20);
    expect(n).toBeLessThan(1_000);
    expect(h.tokens.done.get(id)).toEqual({ index: n, tokens: n, finishReason: "CANCELLED" });
    expect(h.tokens.streams.get(id)).toHaveLength(n);
  });

  it("a job whose row is already final only re-runs the idempotent tail", async () => {
    h = new EngineHarness();
    const job = h.enqueue("a", { firstStart: false, status: "COMPLETED" });
    const id = job.completionId;
    Object.assign(h.store.rows.get(id)!, { outputTokens: 7, finishReason: "STOP" });
    h.engine.start();
    await h.until("job done", () => job.done);
    expect(h.finalisationOf(id)).toEqual(["finish", "settle", "complete"]);
    expect(h.tokens.done.get(id)).toEqual({ index: 7, tokens: 7, finishReason: "STOP" });
    expect(h.admission.settled.get(id)).toBe(7);
    expect(h.batch.added).toEqual([]);
  });

  it("a job cancelled while queued ends CANCELLED without running", async () => {
    h = new EngineHarness();
    const job = h.enqueue("a");
    h.work.cancelledIds.add(job.completionId);
    h.engine.start();
    await h.until("job done", () => job.done);
    await h.until("finalised", () => h.finalisationOf(job.completionId).length === 5);
    expect(h.batch.added).toEqual([]);
    expect(h.store.finalised[0]).toEqual(
      expect.objectContaining({ status: "CANCELLED", finishReason: "CANCELLED", outputTokens: 0, text: "" }),
    );
    expect(h.tokens.done.get(job.completionId)).toEqual({ index: 0, tokens: 0, finishReason: "CANCELLED" });
    expect(job.completed).toBe(1);
  });

  it("a job whose tier was revoked while queued fails unrun, naming the tier, billing nothing; other tenants run", async () => {
    h = new EngineHarness();
    const job = h.enqueue("a");
    const kept = h.enqueue("b", { maxTokens: 3 });
    h.store.revoked.set("a", new Set(["t1"]));
    h.work.cancelledIds.add(job.completionId); // revokeTier also flags it: the grant check wins
    h.faults.inject("grants", 2); // PostgreSQL briefly away: the start check is retried, never skipped
    h.engine.start();
    await h.until("jobs done", () => job.done && kept.done);
    await h.until("finalised", () => h.finalisationOf(job.completionId).length === 4);
    expect(h.batch.added).toEqual([kept.completionId]);
    expect(h.store.finalised.find((f) => f.completionId === job.completionId)).toEqual(
      expect.objectContaining({
        status: "FAILED",
        finishReason: "ERROR",
        outputTokens: 0,
        error: "tier t1 no longer granted to the tenant",
      }),
    );
    expect(job.failures).toEqual(["tier t1 no longer granted to the tenant"]);
    expect(h.finalisationOf(job.completionId)).toEqual(["finalise", "finish", "settle", "fail"]);
    expect(h.admission.settled.get(job.completionId)).toBe(0);
    expect(h.usage.records.map((u) => u.completionId)).toEqual([kept.completionId]);
    expect(kept.completed).toBe(1);
  });

  it("a replay whose tier was revoked fails unrun and bills what its stream already holds", async () => {
    h = new EngineHarness();
    const job = h.enqueue("a", { firstStart: false, status: "RUNNING" });
    const id = job.completionId;
    h.tokens.streams.set(
      id,
      [0, 1, 2].map((i) => tokenAt(id, i)),
    );
    h.store.revoked.set("a", new Set(["t0", "t1"]));
    h.engine.start();
    await h.until("job done", () => job.done);
    expect(h.batch.added).toEqual([]);
    expect(job.failures).toEqual(["tiers t0, t1 no longer granted to the tenant"]);
    expect(h.usage.records).toEqual([expect.objectContaining({ completionId: id, outputTokens: 3 })]);
    expect(h.tokens.done.get(id)).toEqual({ index: 3, tokens: 3, finishReason: "ERROR" });
  });

  it("a job stalled too often fails (not retried) with the queue's reason", async () => {
    h = new EngineHarness();
    const job = h.enqueue("a", { firstStart: false });
    job.deferredFailure = "job stalled more than allowable limit";
    h.engine.start();
    await h.until("job done", () => job.done);
    await h.until("finalised", () => h.finalisationOf(job.completionId).length === 5);
    expect(h.finalisationOf(job.completionId)).toEqual(["usage", "finalise", "finish", "settle", "fail"]);
    expect(h.store.finalised[0]).toEqual(
      expect.objectContaining({
        status: "FAILED",
        finishReason: "ERROR",
        error: "stalled too often: job stalled more than allowable limit",
      }),
    );
    expect(job.failures).toEqual(["stalled too often: job stalled more than allowable limit"]);
    expect(h.batch.added).toEqual([]);
  });

  // What a client received is what the row holds and what usage bills: a job ended before
  // it caught up with its stream (its earlier worker died after streaming) takes the stream's.
  it.each([
    ["stalled too often", "FAILED", "ERROR"],
    ["cancelled at start", "CANCELLED", "CANCELLED"],
    ["its model cannot load", "FAILED", "ERROR"],
  ] as const)("a replay %s ends with what its stream holds", async (why, status, reason) => {
    h = new EngineHarness();
    h.models.broken.add("broken");
    const job = h.enqueue("a", {
      firstStart: false,
      status: "RUNNING",
      modelName: why === "its model cannot load" ? "broken" : "tiny",
    });
    const id = job.completionId;
    if (why === "stalled too often") job.deferredFailure = "job stalled more than allowable limit";
    if (why === "cancelled at start") h.work.cancelledIds.add(id);
    h.tokens.streams.set(
      id,
      [...Array(12).keys()].map((i) => tokenAt(id, i)),
    );
    h.faults.inject("streamed", 2); // a transient failure of the stream read is retried
    h.engine.start();
    await h.until("job done", () => job.done);
    await h.until("finalised", () => h.finalisationOf(id).length === 5);

    const text = h.tokens.text(id);
    expect(h.store.finalised).toEqual([
      expect.objectContaining({ status, finishReason: reason, outputTokens: 12, text }),
    ]);
    expect(h.usage.records.map((u) => u.outputTokens)).toEqual([12]);
    expect(h.tokens.done.get(id)).toEqual({ index: 12, tokens: 12, finishReason: reason });
    expect(h.admission.settled.get(id)).toBe(12);
    expect(h.batch.added).toEqual([]);
  });

  it("a model that cannot load fails the completion", async () => {
    h = new EngineHarness();
    h.models.broken.add("broken");
    const job = h.enqueue("a", { modelName: "broken" });
    h.engine.start();
    await h.until("job done", () => job.done);
    expect(h.store.finalised[0]).toEqual(expect.objectContaining({ status: "FAILED", finishReason: "ERROR" }));
    expect(job.failures[0]).toMatch(/hash check/);
  });

  it("a job naming a completion of another tenant (or none) is failed untouched", async () => {
    h = new EngineHarness();
    const other = h.enqueue("b", { firstStart: false });
    h.work.queue.length = 0;
    const forged = new FakeHandle(other.completionId, "a", h.log);
    const missing = new FakeHandle("cmp_missing", "a", h.log);
    h.work.queue.push(forged, missing);
    h.engine.start();
    await h.until("both failed", () => forged.done && missing.done);
    expect(forged.failures).toEqual(["completion row not found"]);
    expect(missing.failures).toEqual(["completion row not found"]);
    expect(h.store.finalised).toEqual([]);
    expect(h.tokens.done.size).toBe(0);
    expect(h.store.rows.get(other.completionId)!.status).toBe("QUEUED");
  });

  it("a completion re-dispatched while held restarts from the stream; the stale dispatch never completes", async () => {
    h = new EngineHarness({ stepDelayMs: 2 });
    const stale = h.enqueue("a", { maxTokens: 40 });
    const id = stale.completionId;
    h.engine.start();
    await h.until("five tokens streamed", () => (h.tokens.streams.get(id)?.length ?? 0) >= 5);
    const again = new FakeHandle(id, "a", h.log);
    h.work.queue.push(again);
    await h.until("job done", () => again.done);
    expect(again.completed).toBe(1);
    expect(stale.done).toBe(false);
    expect(h.batch.added).toEqual([id, id]);
    expect(h.tokens.streams.get(id)).toEqual([...Array(40).keys()].map((i) => tokenAt(id, i)));
    expect(h.store.finalised).toEqual([expect.objectContaining({ outputTokens: 40, status: "COMPLETED" })]);
  });
  it.each([
    ["all maxTokens of its tokens", 6, false, "LENGTH"],
    ["its EOS", 3, true, "STOP"],
  ] as const)(
    "a job whose stream already holds %s (its worker died before the final event) ends without a step",
    async (_why, n, eos, reason) => {
      h = new EngineHarness();
      const job = h.enqueue("a", { maxTokens: 6, firstStart: false, status: "RUNNING" });
      const id = job.completionId;
      const tokens = [...Array(n).keys()].map((i) => tokenAt(id, i));
      if (eos) tokens[n - 1] = { index: n - 1, tokenId: FAKE_EOS, text: "" };
      h.tokens.streams.set(id, tokens);
      h.engine.start();
      await h.until("job done", () => job.done);
      await h.until("finalised", () => h.finalisationOf(id).length === 5);
      expect(h.batch.added).toEqual([]);
      expect(h.store.finalised).toEqual([
        expect.objectContaining({ status: "COMPLETED", finishReason: reason, outputTokens: n }),
      ]);
      expect(h.tokens.done.get(id)).toEqual({ index: n, tokens: n, finishReason: reason });
      expect(h.usage.records.map((u) => u.outputTokens)).toEqual([n]);
    },
  );

  it("a job whose stream already ended ends as its final event says, with the tokens before it", async () => {
    h = new EngineHarness();
    const job = h.enqueue("a", { maxTokens: 10, firstStart: false, status: "RUNNING" });
    const id = job.completionId;
    h.tokens.streams.set(
      id,
      [0, 1, 2].map((i) => tokenAt(id, i)),
    );
    h.tokens.done.set(id, { index: 3, tokens: 3, finishReason: "CANCELLED" });
    h.engine.start();
    await h.until("job done", () => job.done);
    await h.until("finalised", () => h.finalisationOf(id).length === 5);
    expect(h.batch.added).toEqual([]);
    expect(h.store.finalised).toEqual([
      expect.objectContaining({ status: "CANCELLED", outputTokens: 3, text: h.tokens.text(id) }),
    ]);
  });
});
