import { EngineHarness } from "./testing/engine-fakes";

describe("stall watch", () => {
  let h: EngineHarness;
  afterEach(async () => {
    await h.engine.stop();
  });

  const stalls = () => h.warnings.filter((w) => w.msg === "held sequences streamed no token for a while");

  it("warns, naming the loop's place and the held sequences, while a step hangs; not before the period, and not again within it", async () => {
    h = new EngineHarness({ batchSize: 4, stallWarnMs: 1000, shutdownGraceMs: 0 });
    let open!: () => void;
    const hung = new Promise<void>((r) => (open = r));
    h.batch.stepGate = () => (h.batch.steps.length >= 3 ? hung : Promise.resolve());
    const job = h.enqueue("a", { maxTokens: 50 });
    h.engine.start();
    try {
      await h.until("the third step hangs", () => h.batch.steps.length === 3);
      await new Promise((r) => setTimeout(r, 300));
      expect(stalls()).toHaveLength(0); // not before stallWarnMs
      await h.until("a stall warning", () => stalls().length === 1, 5000);
      const w = stalls()[0] as unknown as {
        stalledMs: number;
        loop: string;
        heldCount: number;
        held: Array<{ completionId: string; waiting: string; entered: boolean; tokens: number; lockLost: boolean }>;
      };
      expect(w.loop).toBe("decode");
      expect(w.stalledMs).toBeGreaterThanOrEqual(1000);
      expect(w.heldCount).toBe(1);
      expect(w.held).toEqual([
        { completionId: job.completionId, tenantId: "a", waiting: "none", entered: true, tokens: 2, lockLost: false },
      ]);
      await new Promise((r) => setTimeout(r, 300));
      expect(stalls()).toHaveLength(1); // once per period
    } finally {
      open();
    }
    await h.until("the job done once the step returns", () => job.completed === 1);
  });

  it("says nothing while tokens flow, nor while nothing is held", async () => {
    h = new EngineHarness({ batchSize: 4, stallWarnMs: 1000, stepDelayMs: 5, shutdownGraceMs: 0 });
    const job = h.enqueue("a", { maxTokens: 300 }); // ~1.5 s of tokens, one every ~5 ms
    h.engine.start();
    await h.until("the job done", () => job.completed === 1, 10000);
    await new Promise((r) => setTimeout(r, 1300)); // idle, nothing held
    expect(stalls()).toHaveLength(0);
  });
});
