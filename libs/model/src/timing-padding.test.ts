/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
import { ManualClock } from "@lite/core";
import type { StepOutput } from "./decode-batch";
import type { ModelRuntime } from "./model-runtime";
import { resolveModeTiers } from "./mode-tiers";
import { hasFinished, runUntil, strip } from "./testing/parking.fixture";
import { buildTinyModel, openTiny, runToEnd, spec, type TinyModel } from "./testing/tiny-model.fixture";

/**
 * The timing defence: a tenant's first use of an expert another tenant made HOT is held
 * back as long as a load from its tier takes, delaying that tenant's sequence only; the
 * token is the one computed in that step. The holds run on a manual clock: no timing here.
 */
describe("timing defence", () => {
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

  /** waits the defence asked for (its first-use parks), each settled by the test */
  let sleeps: Array<{ ms: number; done: () => void }> = [];
  async function parkingRuntime(timingDefence: boolean, gatedSleeps = false) {
    const clock = new ManualClock(1_000_000);
    sleeps = [];
    const defenceSleep = gatedSleeps
      ? (ms: number) => new Promise<void>((done) => sleeps.push({ ms, done }))
      : async () => undefined;
    const rt = await openTiny(m, { parkColdExperts: true, timingDefence, clock, defenceSleep });
    open.push(rt);
    return { rt, clock };
  }
  // The neighbour's sequence routes exactly as the victim's (same prompt, seed and tiers):
  // every expert it uses is one the victim made HOT.
  const victim = (rt: ModelRuntime, id: string) =>
    spec(rt, {
      id,
      tenantId: "ten_v",
      prompt: "same prompt, same experts",
      tierIds: resolveModeTiers(rt.tiers, "FAST"),
      temperature: 0.6,
      routingSeed: 9n,
      maxTokens: 10,
    });
  const neighbour = (rt: ModelRuntime) => ({ ...victim(rt, "n"), tenantId: "ten_n" });
  const distinctExperts = (out: StepOutput[]) =>
    new Set(out.flatMap((o) => o.experts.flatMap((ids, layer) => ids.map((id) => `${layer}:${id}`)))).size;

  /** The victim runs alone first: every expert it uses becomes HOT. */
  async function warmUp(rt: ModelRuntime, clock: ManualClock): Promise<void> {
    const warm = rt.createBatch();
    warm.add(victim(rt, "v0"));
    const got = new Map<string, StepOutput[]>();
    await runUntil(
      warm,
      got,
      () => hasFinished(got, "v0"),
      clock,
      () => {
        for (const x of sleeps.splice(0)) x.done();
      },
    );
  }

  it("on: a first use of an expert another tenant made HOT parks the sequence as a load would, layer by layer, for the tier's estimate; the other tenant's goes on; the token is kept", async () => {
    const refN = (await runToEnd(ref, [neighbour(ref)])).get("n")!;
    const { rt, clock } = await parkingRuntime(true, true);
    await warmUp(rt, clock);
    const used = distinctExperts(refN);
    // its own first uses were padded and counted: one per expert
    expect(rt.timingDefence.paddedFirstUses("ten_v")).toBe(used);
    expect(rt.timingDefence.paddedFirstUses("ten_n")).toBe(0);

    const batch = rt.createBatch();
    batch.add(neighbour(rt));
    batch.add(victim(rt, "v1"));
    sleeps = [];
    const estimate = rt.timingDefence.estimateMs(rt.tiers[0].id);
    const got = new Map<string, StepOutput[]>();
    const step = async () => {
      const out = await batch.step();
      for (const o of out) got.set(o.id, [...(got.get(o.id) ?? []), o]);
      return out.map((o) => o.id);
    };
    // layer 0's first uses park it as if loading; the victim's sequence goes on meanwhile
    expect(await step()).toEqual(["v1"]);
    expect(batch.waiting("n")).toBe("load");
    // one wait per expert it first used in layer 0, each the tier's estimate (as loads in parallel)
    const layer0 = sleeps.length;
    expect(layer0).toBeGreaterThan(0);
    expect(new Set(sleeps.map((x) => x.ms))).toEqual(new Set([estimate]));
    for (let i = 0; i < 3; i++) expect(await step()).toEqual(["v1"]);
    expect(sleeps).toHaveLength(layer0);
    // each settled wait lets it retry and reach the next layer's first uses: one park per layer
    clock.advance(10 * estimate); // past the final hold: the parks are what is measured here
    while (!got.has("n")) {
      for (const x of sleeps.splice(0)) x.done();
      await batch.whenReady();
      await step();
    }
    expect(sleeps).toHaveLength(0);
    expect(rt.timingDefence.paddedFirstUses("ten_n")).toBeGreaterThan(0);
    // another tenant's first uses are not the victim's: its count did not move
    expect(rt.timingDefence.paddedFirstUses("ten_v")).toBe(used);
    expect(strip(got.get("n")!)).toEqual(strip(refN.slice(0, 1)));

    await runUntil(
      batch,
      got,
      () => hasFinished(got, "n"),
      clock,
      () => {
        for (const x of sleeps.splice(0)) x.done();
      },
    );
    expect(strip(got.get("n")!)).toEqual(strip(refN));
    expect(rt.timingDefence.paddedFirstUses("ten_n")).toBe(used);
    expect(rt.timingDefence.paddedFirstUses("ten_v")).toBe(used);
  });

  it("on: the first token of a tenant new to HOT experts waits one park per layer, as a cold one does", async () => {
    const { rt, clock } = await parkingRuntime(true, true);
    await warmUp(rt, clock);
    const batch = rt.createBatch();
    batch.add(neighbour(rt));
    let parks = 0;
    for (;;) {
      const out = await batch.step();
      if (out.length > 0) break;
      if (batch.waiting("n") === "load") {
        parks++;
        for (const x of sleeps.splice(0)) x.done();
        await batch.whenReady();
      } else clock.advance(1000);
    }
    expect(parks).toBe(rt.manifest.architecture.layers);
  });

  it("on: a first use of a cold expert (parked for its load) is held to the same pad from the same start", async () => {
    const refN = (await runToEnd(ref, [neighbour(ref)])).get("n")!;
    const { rt, clock } = await parkingRuntime(true);
    const batch = rt.createBatch();
    batch.add(neighbour(rt));
    const t0 = clock.nowMs();
    // parked (every expert is cold), retried as its loads settle, then computed and held
    expect(await batch.step()).toEqual([]);
    expect(batch.waiting("n")).toBe("load");
    clock.advance(2); // the pad counts from the first attempt, not from the retry
    while (batch.waiting("n") !== "pad") {
      if (batch.waiting("n") === "load") await batch.whenReady();
      else expect(await batch.step()).toEqual([]);
    }
    const pad = rt.timingDefence.estimateMs(rt.tiers[0].id);
    clock.set(t0 + pad - 1);
    expect(await batch.step()).toEqual([]);
    clock.set(t0 + pad);
    const out = await batch.step();
    expect(strip(out)).toEqual(strip(refN.slice(0, 1)));
    expect(rt.timingDefence.paddedFirstUses("ten_n")).toBeGreaterThan(0);
  });

  it("off: nothing is held or counted, and the tokens are those of the defended run", async () => {
    const refN = (await runToEnd(ref, [neighbour(ref)])).get("n")!;
    const { rt, clock } = await parkingRuntime(false);
    await warmUp(rt, clock);
    const batch = rt.createBatch();
    batch.add(neighbour(rt));
    batch.add(victim(rt, "v1"));
    const first = await batch.step();
    expect(first.map((o) => o.id)).toEqual(["n", "v1"]);
    const got = new Map<string, StepOutput[]>([["n", first.filter((o) => o.id === "n")]]);
    await runUntil(batch, got, () => hasFinished(got, "n"));
    expect(strip(got.get("n")!)).toEqual(strip(refN));
    expect(rt.timingDefence.enabled).toBe(false);
    expect(rt.timingDefence.paddedFirstUses("ten_n")).toBe(0);
    expect(rt.timingDefence.paddedFirstUses("ten_v")).toBe(0);
  });
});
