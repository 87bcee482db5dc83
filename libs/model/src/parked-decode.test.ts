/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
import type { StepOutput } from "./decode-batch";
import { VerifiedFileExpertStore, type ExpertLease, type ExpertRef, type ExpertStore } from "./expert-store";
import type { ModelRuntime, ModelRuntimeOptions } from "./model-runtime";
import { resolveModeTiers } from "./mode-tiers";
import { GatedExpertStore } from "./testing/gated-expert-store";
import { hasFinished as finished, runUntil, strip } from "./testing/parking.fixture";
import { buildTinyModel, openTiny, runToEnd, spec, type TinyModel } from "./testing/tiny-model.fixture";

/**
 * Loads never block the shared step: a sequence whose expert is not HOT is parked while the
 * load runs; the others keep decoding; the parked one then gives the tokens it would have
 * given unparked. Loads wait on a gate the test opens (no timing anywhere).
 */

describe("parking: a sequence whose expert is cold sits out while the others decode", () => {
  let m: TinyModel;
  /** the plain runtime, waiting for loads in the step: the reference runs */
  let ref: ModelRuntime;
  const open: ModelRuntime[] = [];
  beforeAll(async () => {
    m = buildTinyModel();
    ref = await openTiny(m);
  });
  afterAll(async () => {
    await Promise.all([ref, ...open].map((rt) => rt.close()));
    m.cleanup();
  });

  /** A parking runtime (defence off) over the plain store behind a gate. */
  async function gatedRuntime(extra: Partial<ModelRuntimeOptions> = {}) {
    let gate!: GatedExpertStore;
    const rt = await openTiny(m, {
      parkColdExperts: true,
      timingDefence: false,
      expertStore: (ctx) => (gate = new GatedExpertStore(new VerifiedFileExpertStore(ctx))),
      ...extra,
    });
    open.push(rt);
    return { rt, gate };
  }
  // B uses the hot tier only; A every tier, so it needs experts B never loaded.
  const b = (rt: ModelRuntime, id = "b") =>
    spec(rt, { id, tenantId: "ten_b", prompt: "abc", tierIds: resolveModeTiers(rt.tiers, "FAST"), maxTokens: 10 });
  const a = (rt: ModelRuntime) =>
    spec(rt, {
      id: "a",
      tenantId: "ten_a",
      prompt: "hello there",
      tierIds: resolveModeTiers(rt.tiers, "MAX"),
      temperature: 0.8,
      routingSeed: 5n,
      maxTokens: 12,
    });

  it("while A is parked on a gated load, B produces all its tokens; once the gate opens, A gives its unparked tokens", async () => {
    const refA = (await runToEnd(ref, [a(ref)])).get("a")!;
    const refB = (await runToEnd(ref, [b(ref)])).get("b")!;
    const { rt, gate } = await gatedRuntime();
    await runToEnd(rt, [b(rt, "b-warm")]); // B's experts are HOT now
    gate.shut();
    const batch = rt.createBatch();
    batch.add(a(rt));
    batch.add(b(rt));
    const got = new Map<string, StepOutput[]>();
    await runUntil(batch, got, () => finished(got, "b"));

    expect(got.get("b")).toHaveLength(refB.length);
    expect(got.get("a")).toBeUndefined();
    expect(batch.waiting("a")).toBe("load");
    expect(batch.waiting("b")).toBeUndefined();
    const asked = [...gate.loadsAsked];
    expect(asked.length).toBeGreaterThan(0);
    // a parked sequence is not retried (nor its loads asked again) until its load settles
    expect(await batch.step()).toEqual([]);
    expect(gate.loadsAsked).toEqual(asked);

    gate.open();
    await runUntil(batch, got, () => finished(got, "a"));
    expect(strip(got.get("a")!)).toEqual(strip(refA));
    expect(strip(got.get("b")!)).toEqual(strip(refB));
  });

  it("a step in which every sequence is parked runs nothing, and whenReady resolves only once the load settles", async () => {
    const refA = (await runToEnd(ref, [a(ref)])).get("a")!;
    const { rt, gate } = await gatedRuntime();
    gate.shut();
    const batch = rt.createBatch();
    batch.add(a(rt));
    expect(await batch.step()).toEqual([]);
    expect(batch.waiting("a")).toBe("load");
    const timings = batch.lastStepTimings;
    const asked = [...gate.loadsAsked];
    let ready = false;
    const whenReady = batch.whenReady().then(() => (ready = true));
    for (let i = 0; i < 5; i++) expect(await batch.step()).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(ready).toBe(false);
    expect(batch.lastStepTimings).toBe(timings); // no forward pass ran
    expect(gate.loadsAsked).toEqual(asked);

    gate.open();
    await whenReady;
    const got = new Map<string, StepOutput[]>();
    await runUntil(batch, got, () => finished(got, "a"));
    expect(strip(got.get("a")!)).toEqual(strip(refA));
  });

  it("a failed load ends the parked sequence with an ERROR output naming the expert, once; the others go on", async () => {
    const refB = (await runToEnd(ref, [b(ref)])).get("b")!;
    const { rt, gate } = await gatedRuntime();
    await runToEnd(rt, [b(rt, "b-warm")]);
    for (const t of rt.tiers) for (const layer of rt.expertRefs(t.id)) for (const e of layer) gate.failing.add(e.key);
    const batch = rt.createBatch();
    batch.add(a(rt));
    batch.add(b(rt));
    const got = new Map<string, StepOutput[]>();
    await runUntil(batch, got, () => finished(got, "b") && finished(got, "a"));

    const failed = got.get("a")!;
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      id: "a",
      index: 0,
      tokenId: -1,
      text: "",
      finished: true,
      finishReason: "ERROR",
    });
    expect(failed[0].error).toMatch(/^expert tiny\.t\d\/l\d\/g\d\/e\d could not be loaded: .*sha256 mismatch$/);
    expect(strip(got.get("b")!)).toEqual(strip(refB));
    expect(batch.waiting("a")).toBeUndefined();
    expect(await batch.step()).toEqual([]);
  });

  it("releases every lease a pass acquired, also when an expert run fails", async () => {
    let counting!: CountingStore;
    const { rt } = await gatedRuntime({
      expertStore: (ctx) => (counting = new CountingStore(new VerifiedFileExpertStore(ctx))),
    });
    const got = (await runToEnd(rt, [a(rt)])).get("a")!;
    expect(got.length).toBeGreaterThan(0);
    expect(counting.acquired).toBeGreaterThan(0);
    expect(counting.released).toBe(counting.acquired);

    // B's experts HOT, then every expert's run fails: the step throws, and still releases every lease
    await runToEnd(rt, [b(rt, "b-warm")]);
    counting.breakRuns = true;
    const batch = rt.createBatch();
    batch.add(b(rt));
    const before = counting.acquired;
    await expect(batch.step()).rejects.toThrow("expert run failed");
    expect(counting.acquired).toBeGreaterThan(before);
    expect(counting.released).toBe(counting.acquired);
  });
});

/** A real store that counts leases given and released, and can make expert runs fail (test-only). */
class CountingStore implements ExpertStore {
  acquired = 0;
  released = 0;
  breakRuns = false;
  constructor(private readonly inner: ExpertStore) {}

  acquire(expert: ExpertRef, tenantIds: ReadonlySet<string>): ExpertLease | undefined {
    const lease = this.inner.acquire(expert, tenantIds);
    if (!lease) return undefined;
    this.acquired++;
    const failing = {
      run: () => Promise.reject(new Error("expert run failed")),
    } as unknown as ExpertLease["session"];
    return {
      session: this.breakRuns ? failing : lease.session,
      firstUseBy: lease.firstUseBy,
      release: () => {
        this.released++;
        lease.release();
      },
    };
  }

  load(expert: ExpertRef, tenantIds: ReadonlySet<string>): Promise<void> {
    return this.inner.load(expert, tenantIds);
  }

  async get(expert: ExpertRef, tenantIds: ReadonlySet<string>): Promise<ExpertLease> {
    await this.load(expert, tenantIds);
    return this.acquire(expert, tenantIds)!;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
