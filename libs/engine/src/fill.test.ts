import { EngineHarness } from "./testing/engine-fakes";

describe("fill", () => {
  let h: EngineHarness;
  afterEach(async () => {
    await h.engine.stop();
  });

  it("holds at most batch + reserve, and a tenant at its hold cap leaves the reserve to others", async () => {
    h = new EngineHarness({ batchSize: 4, reserve: 1, stepDelayMs: 2, shutdownGraceMs: 0 });
    let maxHeld = 0;
    h.batch.beforeStep = () => void (maxHeld = Math.max(maxHeld, h.batch.seqs.size));
    const a = Array.from({ length: 8 }, () => h.enqueue("a", { maxTokens: 10_000 }));
    const b = Array.from({ length: 3 }, () => h.enqueue("b", { maxTokens: 10_000 }));
    h.engine.start();
    await h.until("five held", () => h.engine.held === 5);
    await h.until("a few steps", () => h.batch.steps.length >= 5);

    const heldBy = (t: string) => [...h.batch.seqs.values()].filter((s) => s.spec.tenantId === t).length;
    // a arrived first but may take ceil(4 ÷ 1) = 4 as a newcomer; the fifth slot went to b
    expect(heldBy("a")).toBe(4);
    expect(heldBy("b")).toBe(1);
    expect(h.work.exclusions).toContainEqual(["a"]);
    expect(maxHeld).toBe(5);
    // the rest waits in its queues
    expect(h.work.queue).toEqual([...a.slice(4), ...b.slice(1)]);
  });

  it("fifo: holds exactly the batch in arrival order, no tenant excluded", async () => {
    h = new EngineHarness({ batchSize: 4, fifo: true, stepDelayMs: 2, shutdownGraceMs: 0 });
    for (let i = 0; i < 6; i++) h.enqueue("a", { maxTokens: 10_000 });
    h.enqueue("b", { maxTokens: 10_000 });
    h.engine.start();
    await h.until("four held", () => h.engine.held === 4);
    await h.until("a few steps", () => h.batch.steps.length >= 5);
    expect(h.engine.held).toBe(4);
    expect([...h.batch.seqs.values()].every((s) => s.spec.tenantId === "a")).toBe(true);
    expect(h.work.exclusions.every((x) => x.length === 0)).toBe(true);
    // every held sequence steps (no allocator choice below the batch)
    expect(h.batch.steps.at(-1)!.length).toBe(4);
  });

  it("starts a job as soon as it is taken, not after the jobs taken after it", async () => {
    h = new EngineHarness({ batchSize: 4, reserve: 0, shutdownGraceMs: 0 });
    // The dispatcher's second answer is slow (a round trip on a loaded machine): the first
    // job must run meanwhile.
    let open!: () => void;
    const slow = new Promise<void>((r) => (open = r));
    h.work.gate = (call) => (call === 2 ? slow : Promise.resolve());
    const first = h.enqueue("light", { maxTokens: 3 });
    const second = h.enqueue("heavy", { maxTokens: 50 });
    h.engine.start();
    try {
      await h.until("the first job done while the second is still being taken", () => first.completed === 1);
      expect(h.tokens.text(first.completionId)).toHaveLength(3);
      expect(h.work.calls).toBe(2);
    } finally {
      open();
    }
    await h.until("the second job done once taken", () => second.completed === 1);
  });

  it("takes and runs a job made ready while another job's start is still under way", async () => {
    h = new EngineHarness({ batchSize: 4, reserve: 0, shutdownGraceMs: 0 });
    // The heavy job's start checks are slow (round trips on a loaded machine); the light job,
    // made ready meanwhile, must not wait for them to be taken and run.
    let open!: () => void;
    const slow = new Promise<void>((r) => (open = r));
    const heavy = h.enqueue("heavy", { maxTokens: 5 });
    h.tokens.resumeGate = (id) => (id === heavy.completionId ? slow : Promise.resolve());
    h.engine.start();
    try {
      await h.until("the heavy job taken", () => h.work.calls >= 1 && h.work.queue.length === 0);
      const light = h.enqueue("light", { maxTokens: 3 });
      await h.until("the light job done while the heavy one is still starting", () => light.completed === 1);
      expect(h.tokens.text(light.completionId)).toHaveLength(3);
      expect(heavy.completed).toBe(0);
    } finally {
      open();
    }
    await h.until("the heavy job done once started", () => heavy.completed === 1);
  });

  it("counts the jobs still starting against their tenant's hold cap", async () => {
    h = new EngineHarness({ batchSize: 4, reserve: 1, stepDelayMs: 2, shutdownGraceMs: 0 });
    let open!: () => void;
    const slow = new Promise<void>((r) => (open = r));
    h.tokens.resumeGate = () => slow;
    const a = Array.from({ length: 8 }, () => h.enqueue("a", { maxTokens: 10_000 }));
    h.engine.start();
    try {
      // a may take ceil(4 ÷ 1) = 4 as a newcomer; while those four are still starting, later
      // looks of the loop must not take more of a's jobs
      await h.until("four of a's jobs taken", () => h.work.queue.length === 4);
      await new Promise((r) => setTimeout(r, 100)); // ten 10 ms looks of the fill loop
      expect(h.work.queue).toEqual(a.slice(4));
    } finally {
      open();
    }
    await h.until("four held", () => h.engine.held === 4);
    await h.until("a few steps", () => h.batch.steps.length >= 5);
    expect(h.engine.held).toBe(4);
    expect(h.work.queue).toEqual(a.slice(4));
  });

  it("refills a slot freed by a finished sequence", async () => {
    h = new EngineHarness({ batchSize: 2, reserve: 0 });
    const jobs = Array.from({ length: 5 }, () => h.enqueue("a", { maxTokens: 3 }));
    h.engine.start();
    await h.until("all five done", () => jobs.every((j) => j.completed === 1));
    for (const j of jobs) expect(h.tokens.text(j.completionId)).toHaveLength(3);
    expect(h.work.queue).toHaveLength(0);
  });
});
