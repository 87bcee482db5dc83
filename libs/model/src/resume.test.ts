/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
import { DomainError } from "@lite/core";
import type { DecodeBatch, SequenceSpec, StepOutput } from "./decode-batch";
import type { KvCache } from "./kv-cache";
import type { ModelRuntime } from "./model-runtime";
import { resolveModeTiers } from "./mode-tiers";
import { buildTinyModel, openTiny, runToEnd, spec, type TinyModel } from "./testing/tiny-model.fixture";

/**
 * A job resumed on another worker feeds the tokens its stream already holds with the prompt,
 * in one step, instead of decoding them again one step each: the tokens after them must be
 * those of the uninterrupted run, bit for bit (the experts routed too).
 */
describe("resuming a sequence from the tokens it already produced", () => {
  let m: TinyModel;
  let rt: ModelRuntime;
  beforeAll(async () => {
    m = buildTinyModel();
    rt = await openTiny(m);
  });
  afterAll(async () => {
    await rt.close();
    m.cleanup();
  });

  const cases = (): SequenceSpec[] => [
    spec(rt, { id: "deep", prompt: "hello there", tierIds: resolveModeTiers(rt.tiers, "DEEP"), maxTokens: 24 }),
    spec(rt, {
      id: "sampled",
      tenantId: "ten_b",
      prompt: "The quick brown fox jumps over the lazy dog.",
      tierIds: resolveModeTiers(rt.tiers, "MAX"),
      temperature: 0.9,
      routingSeed: 11n,
      maxTokens: 20,
    }),
    // BOS alone: the first step's only prompt row attends in TypeScript
    spec(rt, { id: "empty", prompt: "", tierIds: resolveModeTiers(rt.tiers, "FAST"), temperature: 0.4, maxTokens: 12 }),
  ];
  // The resuming step also routes the fed tokens' rows, so its experts and expert calls
  // include theirs; the steps after it must equal the uninterrupted run in everything.
  const strip = (o: StepOutput[]) =>
    o.map(({ id: _id, text: _t, experts, expertCalls, ...rest }, i) =>
      i === 0 ? rest : { ...rest, experts, expertCalls },
    );

  it.each([1, 2, 7])("after %i tokens: the rest equal the uninterrupted run, alone and in a batch", async (k) => {
    for (const s of cases()) {
      const whole = (await runToEnd(rt, [s])).get(s.id)!;
      const n = Math.min(k, whole.length - 1);
      const resumeTokens = whole.slice(0, n).map((o) => o.tokenId);
      const alone = (await runToEnd(rt, [{ ...s, resumeTokens }])).get(s.id)!;
      expect(strip(alone)).toEqual(strip(whole.slice(n)));

      // joining a batch whose other sequence is mid-way
      const batch = rt.createBatch();
      const other = spec(rt, {
        id: "other",
        prompt: "abc",
        tierIds: resolveModeTiers(rt.tiers, "BALANCED"),
        maxTokens: 30,
      });
      batch.add(other);
      await batch.step();
      await batch.step();
      batch.add({ ...s, resumeTokens });
      const got: StepOutput[] = [];
      for (let step = await batch.step(); step.length > 0; step = await batch.step()) {
        got.push(...step.filter((o) => o.id === s.id));
      }
      expect(strip(got)).toEqual(strip(whole.slice(n)));
    }
  });

  // A pass does not run the last layer for the rows nobody samples (all of a sequence's rows
  // but its last, when its TierSet keeps every tier: forward-pass.ts unsampledRows): only
  // their K/V are written there. The replay's KV must still be the uninterrupted run's, bit
  // for bit, and the calls it bills those of the uninterrupted run (routing-independent
  // counts for the rows it skips; DEEP keeps more tiers than tierTopK and runs in full).
  it.each(["FAST", "BALANCED", "DEEP"] as const)(
    "%s: a replay rebuilds the uninterrupted run's KV bit for bit, skipping the last layer for its unsampled rows, and bills the same calls",
    async (mode) => {
      const kvBits = (batch: DecodeBatch, id: string) =>
        (batch as unknown as { seqs: Map<string, { kv: KvCache }> }).seqs
          .get(id)!
          .kv.heldBlocks()
          .map((b) => Uint32Array.from(new Uint32Array(b.buffer, b.byteOffset, b.length)));
      const s = spec(rt, {
        id: "kv",
        prompt: "keys and values",
        tierIds: resolveModeTiers(rt.tiers, mode),
        temperature: 0.8,
        routingSeed: 7n,
        maxTokens: 70,
      });
      const cut = 47; // several KV blocks
      const whole = rt.createBatch();
      whole.add(s);
      const wholeOut: StepOutput[] = [];
      let wholeKv: Uint32Array[] = [];
      while (wholeOut.length < s.maxTokens && !wholeOut.at(-1)?.finished) {
        wholeOut.push(...(await whole.step()));
        if (wholeOut.length === cut + 1) wholeKv = kvBits(whole, s.id);
      }
      expect(wholeOut.length).toBeGreaterThan(cut + 1);

      const batch = rt.createBatch();
      batch.add({ ...s, resumeTokens: wholeOut.slice(0, cut).map((o) => o.tokenId) });
      const first = await batch.step();
      expect(first).toHaveLength(1);
      expect(first[0]).toMatchObject({ index: cut, tokenId: wholeOut[cut].tokenId });
      expect(kvBits(batch, s.id)).toEqual(wholeKv);
      const rest = [...first];
      for (let step = await batch.step(); step.length > 0; step = await batch.step()) rest.push(...step);
      expect(strip(rest)).toEqual(strip(wholeOut.slice(cut)));

      // billed: the replay's outputs report the calls of every row it fed, as the run did
      const total = (o: StepOutput[]) => {
        const t: Record<string, number> = {};
        for (const x of o) for (const [tier, n] of Object.entries(x.expertCalls)) t[tier] = (t[tier] ?? 0) + n;
        return t;
      };
      expect(total(rest)).toEqual(total(wholeOut));
      // the last layer ran its last row only (FAST, BALANCED): that row's experts, one per call
      const layers = rt.manifest.architecture.layers;
      const lastLayer = first[0].experts[layers - 1];
      const perRow = Object.values(wholeOut[cut + 1].expertCalls).reduce((a, b) => a + b, 0) / layers;
      if (mode !== "DEEP") expect(lastLayer.length).toBe(perRow);
      else expect(lastLayer.length).toBeGreaterThan(perRow);
    },
  );

  it("resumes with one token left of maxTokens and refuses a sequence that has none left", async () => {
    const s = cases()[0];
    const whole = (await runToEnd(rt, [s])).get(s.id)!;
    expect(whole).toHaveLength(s.maxTokens);
    const last = whole.slice(0, s.maxTokens - 1).map((o) => o.tokenId);
    const out = (await runToEnd(rt, [{ ...s, resumeTokens: last }])).get(s.id)!;
    expect(strip(out)).toEqual(strip(whole.slice(-1)));
    expect(out[0]).toMatchObject({ index: s.maxTokens - 1, finished: true, finishReason: "LENGTH" });

    const all = whole.map((o) => o.tokenId);
    const batch = rt.createBatch();
    expect(() => batch.add({ ...s, resumeTokens: all })).toThrow(DomainError);
    expect(() => batch.add({ ...s, resumeTokens: [-1] })).toThrow(/resumeTokens/);
  });

  // Long catch-ups attend a run of rows at a time (KvCache.attendRows: the WebAssembly kernel,
  // across many KV blocks); two replays share the pass, beside a sequence decoding.
  it("after ~100 tokens, two replays in one step: the rest equal the uninterrupted runs", async () => {
    const long = [
      spec(rt, {
        id: "l1",
        prompt: "hi",
        tierIds: resolveModeTiers(rt.tiers, "DEEP"),
        temperature: 0.7,
        maxTokens: 140,
      }),
      spec(rt, {
        id: "l2",
        tenantId: "ten_b",
        prompt: "",
        tierIds: resolveModeTiers(rt.tiers, "FAST"),
        temperature: 0.5,
        routingSeed: 5n,
        maxTokens: 120,
      }),
    ];
    const whole = await runToEnd(rt, long);
    const batch = rt.createBatch();
    batch.add(spec(rt, { id: "other", prompt: "abc", maxTokens: 40 }));
    await batch.step();
    const cut = new Map(long.map((s, i) => [s.id, Math.min([101, 67][i], whole.get(s.id)!.length - 1)]));
    for (const s of long) {
      expect(cut.get(s.id)).toBeGreaterThan(40); // long enough to span several KV blocks
      batch.add({
        ...s,
        resumeTokens: whole
          .get(s.id)!
          .slice(0, cut.get(s.id))
          .map((o) => o.tokenId),
      });
    }
    const got = new Map<string, StepOutput[]>(long.map((s) => [s.id, []]));
    for (let step = await batch.step(); step.length > 0; step = await batch.step())
      for (const o of step) got.get(o.id)?.push(o);
    for (const s of long) expect(strip(got.get(s.id)!)).toEqual(strip(whole.get(s.id)!.slice(cut.get(s.id))));
  });
});
