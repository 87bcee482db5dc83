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

  async function parkingRuntime(timingDefence: boolean) {
    const clock = new ManualClock(1_000_000);
    const rt = await openTiny(m, { parkColdExperts: true, timingDefence, clock });
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
    await runUntil(warm, got, () => hasFinished(got, "v0"), clock);
  }

  it("on: the first user's sequence is held until the pad is over, the other tenant's is not, and the token is kept", async () => {
    const refN = (await runToEnd(ref, [neighbour(ref)])).get("n")!;
    const { rt, clock } = await parkingRuntime(true);
    await warmUp(rt, clock);
    const used = distinctExperts(refN);
    // its own first uses were padded and counted: one per expert
    expect(rt.timingDefence.paddedFirstUses("ten_v")).toBe(used);
    expect(rt.timingDefence.paddedFirstUses("ten_n")).toBe(0);

    const batch = rt.createBatch();
    batch.add(neighbour(rt));
    batch.add(victim(rt, "v1"));
    const pad = rt.timingDefence.estimateMs(rt.tiers[0].id);
    const t0 = clock.nowMs();
    const got = new Map<string, StepOutput[]>();
    const step = async () => {
      const out = await batch.step();
      for (const o of out) got.set(o.id, [...(got.get(o.id) ?? []), o]);
      return out.map((o) => o.id);
    };
    expect(await step()).toEqual(["v1"]);
    expect(batch.waiting("n")).toBe("pad");
    expect(rt.timingDefence.paddedFirstUses("ten_n")).toBeGreaterThan(0);
    // another tenant's first uses are not the victim's: its count did not move
    expect(rt.timingDefence.paddedFirstUses("ten_v")).toBe(used);
    // one ms short of the pad: the victim's sequence goes on, the neighbour's still waits
    clock.set(t0 + pad - 1);
    for (let i = 0; i < 3; i++) expect(await step()).toEqual(["v1"]);
    expect(batch.waiting("n")).toBe("pad");
    clock.set(t0 + pad);
    expect(batch.waiting("n")).toBeUndefined();
    expect(await step()).toEqual(["n", "v1"]);
    expect(strip(got.get("n")!)).toEqual(strip(refN.slice(0, 1)));

    await runUntil(batch, got, () => hasFinished(got, "n"), clock);
    expect(strip(got.get("n")!)).toEqual(strip(refN));
    expect(rt.timingDefence.paddedFirstUses("ten_n")).toBe(used);
    expect(rt.timingDefence.paddedFirstUses("ten_v")).toBe(used);
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
