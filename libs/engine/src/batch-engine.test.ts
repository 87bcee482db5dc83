import { EngineHarness, tokenAt } from "./testing/engine-fakes";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("batch engine", () => {
  let h: EngineHarness;
  afterEach(async () => {
    await h.engine.stop();
    expect(h.tokens.violations).toEqual([]);
  });

  it("lock loss: the job is dropped here, nothing more is streamed or finalised for it", async () => {
    h = new EngineHarness({ stepDelayMs: 2 });
    const lost = h.enqueue("a", { maxTokens: 10_000 });
    const kept = h.enqueue("b", { maxTokens: 30 });
    h.engine.start();
    await h.until("streaming", () => (h.tokens.streams.get(lost.completionId)?.length ?? 0) >= 3);
    lost.lockLost = true;
    await h.until("dropped", () => h.batch.removed.includes(lost.completionId));
    const streamed = h.tokens.streams.get(lost.completionId)!.length;
    await h.until("the other job done", () => kept.done);
    await sleep(20);

    // at most the flush already under way when the lock was found lost
    expect(h.tokens.streams.get(lost.completionId)!.length).toBeLessThanOrEqual(streamed + 1);
    expect(h.finalisationOf(lost.completionId)).toEqual([]);
    expect(lost.done).toBe(false);
    expect(h.tokens.done.has(lost.completionId)).toBe(false);
    expect(h.warnings.map((w) => w.msg)).toContain("lost the job's lock (another worker owns it): dropping it here");
    // the other tenant's job was not disturbed
    expect(kept.completed).toBe(1);
    expect(h.tokens.streams.get(kept.completionId)).toHaveLength(30);
    expect(h.engine.held).toBe(0);
  });

  it("stop() takes no new job and runs held sequences to their end", async () => {
    h = new EngineHarness({ stepDelayMs: 2 });
    const job = h.enqueue("a", { maxTokens: 30 });
    h.engine.start();
    await h.until("streaming", () => (h.tokens.streams.get(job.completionId)?.length ?? 0) >= 1);
    const stopped = h.engine.stop();
    const late = h.enqueue("b");
    await stopped;

    expect(job.completed).toBe(1);
    expect(h.tokens.streams.get(job.completionId)).toEqual(
      [...Array(30).keys()].map((i) => tokenAt(job.completionId, i)),
    );
    expect(h.finalisationOf(job.completionId)).toEqual(["usage", "finalise", "finish", "settle", "complete"]);
    expect(h.work.queue).toEqual([late]);
  });

  it("shutdown grace: after it, running sequences are left to another worker (not finalised)", async () => {
    h = new EngineHarness({ stepDelayMs: 2, shutdownGraceMs: 150 });
    const jobs = [h.enqueue("a", { maxTokens: 1_000_000 }), h.enqueue("b", { maxTokens: 1_000_000 })];
    h.engine.start();
    await h.until("both streaming", () => jobs.every((j) => (h.tokens.streams.get(j.completionId)?.length ?? 0) >= 2));
    const t0 = Date.now();
    await h.engine.stop();
    const waitedMs = Date.now() - t0;

    expect(waitedMs).toBeGreaterThanOrEqual(140);
    expect(waitedMs).toBeLessThan(3000);
    expect(h.engine.held).toBe(0);
    expect(h.batch.seqs.size).toBe(0);
    expect(h.batch.removed.sort()).toEqual(jobs.map((j) => j.completionId).sort());
    for (const j of jobs) {
      expect(j.done).toBe(false); // stays in its queue; its lock lapses and another worker resumes it
      expect(h.tokens.done.has(j.completionId)).toBe(false);
    }
    expect(h.store.finalised).toEqual([]);
    expect(h.warnings.map((w) => w.msg)).toContain(
      "shutdown grace over: leaving running jobs to be resumed by another worker",
    );
  });

  it("shutdown grace bounds finalisations still retrying against an absent service", async () => {
    h = new EngineHarness({ shutdownGraceMs: 200 });
    h.faults.inject("finalise", 1_000_000);
    const job = h.enqueue("a", { maxTokens: 2 });
    h.engine.start();
    // six failed attempts: the retry now sleeps ≥ 50 ms × 2^5 × 0.75 = 1.2 s, past the grace
    await h.until("retrying the row", () => (h.faults.failed.get("finalise") ?? 0) >= 6);
    const t0 = Date.now();
    await h.engine.stop();
    const waitedMs = Date.now() - t0;

    expect(waitedMs).toBeLessThan(3000);
    expect(job.done).toBe(false);
    expect(h.finalisationOf(job.completionId)).toEqual(["usage"]);
    expect(h.warnings.map((w) => w.msg)).toContain(
      "finalisations still retrying at shutdown: leaving them to the next worker",
    );
    // its next failed attempt, past the grace, gives up: the job stays queued for the next worker
    await h.until("gave up", () => h.warnings.some((w) => w.msg === "finalisation gave up; the job stays queued"));
    expect(job.done).toBe(false);
  });

  it("weighs tenants in every step: slots follow weights when more is held than the batch", async () => {
    h = new EngineHarness({ batchSize: 4, reserve: 4, stepDelayMs: 1, shutdownGraceMs: 0 });
    h.store.weights.set("heavy", 3);
    for (let i = 0; i < 4; i++) h.enqueue("light", { maxTokens: 1_000_000 });
    for (let i = 0; i < 4; i++) h.enqueue("heavy", { maxTokens: 1_000_000 });
    h.engine.start();
    await h.until("eight held", () => h.engine.held === 8);
    const from = h.batch.steps.length;
    await h.until("200 more steps", () => h.batch.steps.length >= from + 200);
    const count = (t: string) =>
      h.batch.steps
        .slice(from, from + 200)
        .flat()
        .filter((id) => id.startsWith(`cmp_${t}_`)).length;
    expect(h.batch.steps.slice(from).every((s) => s.length <= 4)).toBe(true);
    expect(count("heavy") / count("light")).toBeCloseTo(3, 0);
  });
});
