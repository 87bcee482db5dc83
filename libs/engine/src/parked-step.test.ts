/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  buildModel,
  deriveRoutingSeed,
  loadModel,
  resolveModeTiers,
  VerifiedFileExpertStore,
  type ExpertLease,
  type ExpertRef,
  type ExpertStore,
  type ModelRuntime,
  type SequenceSpec,
  type StepOutput,
} from "@lite/model";
import { BatchEngine } from "./batch-engine";
import { EngineHarness } from "./testing/engine-fakes";
import type { FakeHandle } from "./testing/port-fakes";
import { harnessEngine, runtimeModel } from "./testing/runtime-engine";

/**
 * The engine over a batch that parks (the real tiny model): a tenant whose expert is cold
 * gets no slot and no charge while another tenant's completion streams; a step in which
 * every held sequence is parked waits instead of spinning; a failed load fails only the
 * completion that needed it. Loads wait on a gate the test opens: no timing is asserted.
 */

/** The plain store behind a gate; loads of the experts named in `failing` fail (a bad file). */
class GatedStore implements ExpertStore {
  readonly failing = new Set<string>();
  private gate: Promise<void> = Promise.resolve();
  private openGate: () => void = () => undefined;
  constructor(private readonly inner: ExpertStore) {}
  shut(): void {
    this.gate = new Promise<void>((resolve) => (this.openGate = resolve));
  }
  open(): void {
    this.openGate();
    this.gate = Promise.resolve();
  }
  acquire(expert: ExpertRef, tenantIds: ReadonlySet<string>): ExpertLease | undefined {
    return this.inner.acquire(expert, tenantIds);
  }
  async load(expert: ExpertRef, tenantIds: ReadonlySet<string>): Promise<void> {
    await this.gate;
    if (this.failing.has(expert.key)) throw new Error(`${expert.file.path}: sha256 mismatch`);
    await this.inner.load(expert, tenantIds);
  }
  async get(expert: ExpertRef, tenantIds: ReadonlySet<string>): Promise<ExpertLease> {
    await this.load(expert, tenantIds);
    return this.acquire(expert, tenantIds)!;
  }
  close(): Promise<void> {
    this.open();
    return this.inner.close();
  }
}

interface Job {
  tenantId: string;
  prompt: string;
  seed: string;
  mode: "FAST" | "MAX";
  maxTokens: number;
}

describe("engine: parked sequences", () => {
  let modelDir: string;
  let ref: ModelRuntime;
  beforeAll(async () => {
    modelDir = fs.mkdtempSync(path.join(os.tmpdir(), "lite-park-"));
    buildModel({ modelDir, modelName: "tiny", preset: "tiny" });
    ref = await loadModel({ modelDir, modelName: "tiny" });
  });
  afterAll(async () => {
    await ref.close();
    fs.rmSync(modelDir, { recursive: true, force: true });
  });

  let rt: ModelRuntime;
  let gate: GatedStore;
  let h: EngineHarness;
  let engine: BatchEngine;
  /** ids of every batch.step call, in order */
  let steps: string[][];
  /** cancel checks the engine made (one per flush) */
  let checks: number;
  beforeEach(async () => {
    rt = await loadModel({
      modelDir,
      modelName: "tiny",
      parkColdExperts: true,
      timingDefence: false,
      expertStore: (ctx) => (gate = new GatedStore(new VerifiedFileExpertStore(ctx))),
    });
    h = new EngineHarness();
    steps = [];
    checks = 0;
    const cancelled = h.work.cancelled.bind(h.work);
    h.work.cancelled = (items) => {
      checks++;
      return cancelled(items);
    };
    const model = runtimeModel(rt, (only) => void steps.push([...(only ?? [])]));
    engine = harnessEngine(h, model, { workerId: "w-park", batchSize: 4 });
  });
  afterEach(async () => {
    gate.open();
    await engine.stop();
    await rt.close();
    expect(h.tokens.violations).toEqual([]);
  });

  /** Queues a job as the API would (its payload and row agree). */
  function enqueue(j: Job): FakeHandle {
    const handle = h.enqueue(j.tenantId, { maxTokens: j.maxTokens });
    const tierIds = resolveModeTiers(rt.tiers, j.mode);
    Object.assign(handle.firstStart!, { prompt: j.prompt, seed: j.seed, tierIds, mode: j.mode });
    Object.assign(h.store.rows.get(handle.completionId)!, {
      prompt: j.prompt,
      seed: j.seed,
      tierSet: tierIds,
      mode: j.mode,
    });
    return handle;
  }

  /** The sequence the engine runs for a job, as libs/engine job-start builds it. */
  function sequenceOf(j: Job, id: string): SequenceSpec {
    return {
      id,
      tenantId: j.tenantId,
      promptTokens: rt.tokenizer.encode(j.prompt),
      routingSeed: deriveRoutingSeed(j.tenantId, j.seed),
      tierIds: resolveModeTiers(rt.tiers, j.mode),
      temperature: 0,
      maxTokens: j.maxTokens,
    };
  }

  /** Runs a job's sequence straight on a runtime to its end (waiting out parks). */
  async function tokensOf(on: ModelRuntime, s: SequenceSpec): Promise<number[]> {
    const batch = on.createBatch();
    batch.add(s);
    const out: StepOutput[] = [];
    while (!out.some((o) => o.finished)) {
      const step = await batch.step();
      out.push(...step);
      if (step.length === 0) await batch.whenReady();
    }
    return out.map((o) => o.tokenId);
  }

  const streamed = (id: string) => (h.tokens.streams.get(id) ?? []).map((t) => t.tokenId);
  const hot: Job = { tenantId: "ten_b", prompt: "abc", seed: "1", mode: "FAST", maxTokens: 12 };
  const cold: Job = { tenantId: "ten_a", prompt: "hello there", seed: "2", mode: "MAX", maxTokens: 10 };

  it("a parked tenant gets no slot or charge while another streams, the step then waits without spinning, and the parked completion ends with its unparked tokens", async () => {
    const expected = await tokensOf(ref, sequenceOf(cold, "a"));
    const expectedHot = await tokensOf(ref, sequenceOf(hot, "b"));
    await tokensOf(rt, sequenceOf(hot, "warm")); // the hot job's experts are HOT
    gate.shut();
    const a = enqueue(cold);
    const b = enqueue(hot);
    engine.start();
    await h.until("the hot job done", () => b.done);
    expect(streamed(b.completionId)).toEqual(expectedHot);
    expect(streamed(a.completionId)).toEqual([]);
    expect(a.done).toBe(false);
    expect(h.work.charged.get("ten_a")).toBeUndefined();
    // one step included the cold job: its first, in which it was parked
    expect(steps.filter((ids) => ids.includes(a.completionId))).toHaveLength(1);

    // only the parked job is held: the loop goes round (cancel checks) without stepping
    const stepsThen = steps.length;
    const checksThen = checks;
    await h.until("three more cancel checks", () => checks >= checksThen + 3);
    expect(steps.length).toBe(stepsThen);

    gate.open();
    await h.until("the cold job done", () => a.done);
    expect(streamed(a.completionId)).toEqual(expected);
    expect(h.store.finalised.map((f) => [f.completionId, f.status])).toEqual(
      expect.arrayContaining([
        [a.completionId, "COMPLETED"],
        [b.completionId, "COMPLETED"],
      ]),
    );
    expect(h.work.charged.get("ten_a")).toBeCloseTo(expected.length * 1.5);
  });

  it("a replay's first step that parks it is noted as survived (stepped) before its load ends: a kill during the load is not the job's fault", async () => {
    gate.shut();
    const a = enqueue(cold);
    const notes: string[] = [];
    Object.assign(a, {
      entering: async () => void notes.push("entering"),
      stepped: () => void notes.push("stepped"),
    });
    engine.start();
    await h.until("the parked job's first step noted", () => notes.includes("stepped"));
    expect(notes).toEqual(["entering", "stepped"]);
    expect(streamed(a.completionId)).toEqual([]); // still parked: no token yet
    gate.open();
    await h.until("the cold job done", () => a.done);
    expect(notes).toEqual(["entering", "stepped"]); // once per attempt
  });

  it("a failed load fails the completion that needed it, naming the expert; the other tenant's completes", async () => {
    const expected = await tokensOf(ref, sequenceOf(hot, "b"));
    await tokensOf(rt, sequenceOf(hot, "warm"));
    for (const t of rt.tiers) for (const layer of rt.expertRefs(t.id)) for (const e of layer) gate.failing.add(e.key);
    const a = enqueue(cold);
    const b = enqueue(hot);
    engine.start();
    await h.until("both done", () => a.done && b.done);
    expect(a.failures).toEqual([
      expect.stringMatching(/^expert tiny\.t\d\/l\d\/g\d\/e\d could not be loaded: .*sha256 mismatch$/),
    ]);
    expect(h.store.finalised.find((f) => f.completionId === a.completionId)).toMatchObject({
      status: "FAILED",
      finishReason: "ERROR",
      outputTokens: 0,
      error: a.failures[0],
    });
    expect(h.tokens.done.get(a.completionId)).toMatchObject({ tokens: 0, finishReason: "ERROR" });
    expect(b.completed).toBe(1);
    expect(streamed(b.completionId)).toEqual(expected);
  });
});
