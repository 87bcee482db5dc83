/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
import type { SequenceSpec, StepOutput } from "./decode-batch";
import { VerifiedFileExpertStore, type ExpertLease, type ExpertRef, type ExpertStore } from "./expert-store";
import type { ModelRuntime } from "./model-runtime";
import { resolveModeTiers, TIER_MODES } from "./mode-tiers";
import { GatedExpertStore } from "./testing/gated-expert-store";
import { hasFinished, runUntil, strip } from "./testing/parking.fixture";
import { buildTinyModel, openTiny, runToEnd, spec, type TinyModel } from "./testing/tiny-model.fixture";

/**
 * A parked sequence resumes at the layer where it parked: the layers it passed are not run
 * again (their experts are not asked for again), and it gives, alone or batched, exactly
 * the tokens, experts and calls of a run that never parked — also when experts go cold at
 * random between its passes, so that it parks at any layer, any number of times.
 */
describe("parked sequences resume at the layer where they parked", () => {
  let m: TinyModel;
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

  const deep = (rt: ModelRuntime, over: Partial<SequenceSpec> & { prompt?: string }) =>
    spec(rt, { tierIds: resolveModeTiers(rt.tiers, "MAX"), temperature: 0.8, maxTokens: 6, ...over });

  it("its next pass asks for no expert of the layers before the one it parked at", async () => {
    const s = (rt: ModelRuntime) => deep(rt, { id: "a", prompt: "a prompt of some length", routingSeed: 3n });
    const expected = (await runToEnd(ref, [s(ref)])).get("a")!;
    let gate!: GatedExpertStore;
    let counting!: AskingStore;
    const rt = await openTiny(m, {
      parkColdExperts: true,
      timingDefence: false,
      expertStore: (ctx) =>
        (counting = new AskingStore((gate = new GatedExpertStore(new VerifiedFileExpertStore(ctx))))),
    });
    open.push(rt);
    const layers = rt.manifest.architecture.layers;
    // every expert of layer 0 HOT, the rest cold behind the gate: the prefill parks at layer 1
    await Promise.all(rt.tiers.flatMap((t) => rt.expertRefs(t.id)[0].map((e) => gate.load(e, new Set(["x"])))));
    gate.loadsAsked.length = 0;
    gate.shut();
    const batch = rt.createBatch();
    batch.add(s(rt));
    expect(await batch.step()).toEqual([]);
    expect(batch.waiting("a")).toBe("load");
    expect(new Set(gate.loadsAsked.map((k) => layerOf(k)))).toEqual(new Set([1]));
    counting.asked.length = 0;
    gate.open();
    await batch.whenReady();
    const got = new Map<string, StepOutput[]>();
    await runUntil(batch, got, () => hasFinished(got, "a"));
    expect(strip(got.get("a")!)).toEqual(strip(expected));
    // the pass that resumed it began at layer 1: its first ask after the gate opened
    expect(layers).toBeGreaterThan(1);
    expect(layerOf(counting.asked[0])).toBe(1);
    // and the next token's pass starts at layer 0 again
    expect(counting.asked.some((k) => layerOf(k) === 0)).toBe(true);
  });

  it("with experts going cold at random between passes (seeded), alone and batched: the tokens of a run that never parked", async () => {
    const modes = TIER_MODES;
    const prompts = [
      "hi",
      "a somewhat longer prompt here",
      "x",
      "tenants share one model",
      "ünïcödé bytes",
      "0123456789",
    ];
    for (let trial = 0; trial < 4; trial++) {
      const rand = mulberry32(1000 + trial);
      const n = 1 + Math.floor(rand() * 3);
      const specs = (rt: ModelRuntime) =>
        Array.from({ length: n }, (_, i) =>
          spec(rt, {
            id: `s${i}`,
            tenantId: `ten_${i % 2}`,
            prompt: prompts[(trial * 3 + i) % prompts.length],
            tierIds: resolveModeTiers(rt.tiers, modes[(trial + i) % modes.length]),
            temperature: i % 2 === 0 ? 0 : 0.9,
            routingSeed: BigInt(trial * 10 + i),
            maxTokens: 4 + i,
          }),
        );
      const expected = new Map<string, StepOutput[]>();
      for (const s of specs(ref)) expected.set(s.id, (await runToEnd(ref, [s])).get(s.id)!);
      let forgetting!: ForgettingStore;
      const rt = await openTiny(m, {
        parkColdExperts: true,
        timingDefence: false,
        expertStore: (ctx) => (forgetting = new ForgettingStore(new VerifiedFileExpertStore(ctx), mulberry32(trial))),
      });
      open.push(rt);
      const got = await runAll(rt, specs(rt));
      for (const [id, want] of expected)
        expect({ trial, id, out: strip(got.get(id)!) }).toEqual({ trial, id, out: strip(want) });
      expect(forgetting.refused).toBeGreaterThan(0);
    }
  });
});

/**
 * Steps until every sequence finished (loads here may settle before the step returns, so
 * "nothing waiting" does not mean "done"), waiting when a step gave nothing; bounded.
 */
async function runAll(rt: ModelRuntime, specs: SequenceSpec[]): Promise<Map<string, StepOutput[]>> {
  const batch = rt.createBatch();
  specs.forEach((s) => batch.add(s));
  const out = new Map<string, StepOutput[]>(specs.map((s) => [s.id, []]));
  for (let round = 0; round < 5000 && !specs.every((s) => hasFinished(out, s.id)); round++) {
    const step = await batch.step();
    step.forEach((o) => out.get(o.id)!.push(o));
    if (step.length === 0) await batch.whenReady();
  }
  return out;
}

const layerOf = (key: string) => Number(/\/l(\d+)\//.exec(key)![1]);

/** mulberry32: a small seeded generator (test-only). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A real store that notes the experts asked for (acquire), in order (test-only). */
class AskingStore implements ExpertStore {
  readonly asked: string[] = [];
  constructor(private readonly inner: ExpertStore) {}
  acquire(expert: ExpertRef, tenantIds: ReadonlySet<string>): ExpertLease | undefined {
    this.asked.push(expert.key);
    return this.inner.acquire(expert, tenantIds);
  }
  load(expert: ExpertRef, tenantIds: ReadonlySet<string>): Promise<void> {
    return this.inner.load(expert, tenantIds);
  }
  get(expert: ExpertRef, tenantIds: ReadonlySet<string>): Promise<ExpertLease> {
    return this.inner.get(expert, tenantIds);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * A real store over which experts go cold at random (test-only): each `acquire` of an
 * expert it holds HOT drops it with probability 1/16 first (then it is not given, as a cold
 * one); a `load` makes it HOT again. Sequences so park at any layer, again and again.
 */
class ForgettingStore implements ExpertStore {
  private readonly hot = new Set<string>();
  refused = 0;
  constructor(
    private readonly inner: ExpertStore,
    private readonly rand: () => number,
  ) {}
  acquire(expert: ExpertRef, tenantIds: ReadonlySet<string>): ExpertLease | undefined {
    if (this.hot.has(expert.key) && this.rand() < 1 / 16) this.hot.delete(expert.key);
    if (!this.hot.has(expert.key)) {
      this.refused++;
      return undefined;
    }
    return this.inner.acquire(expert, tenantIds);
  }
  async load(expert: ExpertRef, tenantIds: ReadonlySet<string>): Promise<void> {
    await this.inner.load(expert, tenantIds);
    this.hot.add(expert.key);
  }
  async get(expert: ExpertRef, tenantIds: ReadonlySet<string>): Promise<ExpertLease> {
    await this.load(expert, tenantIds);
    return this.inner.acquire(expert, tenantIds)!;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
