/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
import { DomainError } from "@lite/core";
import type { StepOutput } from "./decode-batch";
import type { ModelRuntime } from "./model-runtime";
import { resolveModeTiers } from "./mode-tiers";
import { buildTinyModel, openTiny, runToEnd, spec, type TinyModel } from "./testing/tiny-model.fixture";

describe("decode batch", () => {
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

  const specs = () => [
    spec(rt, { id: "a", prompt: "hello", tierIds: resolveModeTiers(rt.tiers, "DEEP"), maxTokens: 20 }),
    spec(rt, {
      id: "b",
      prompt: "The quick brown fox jumps over the lazy dog, twice.",
      tierIds: resolveModeTiers(rt.tiers, "BALANCED"),
      temperature: 0.9,
      routingSeed: 7n,
      maxTokens: 16,
    }),
    spec(rt, {
      id: "c",
      tenantId: "ten_b",
      prompt: "x",
      tierIds: resolveModeTiers(rt.tiers, "MAX"),
      temperature: 0.5,
      routingSeed: 2n ** 63n + 5n,
      maxTokens: 24,
    }),
  ];
  const strip = (o: StepOutput[]) =>
    o.map(({ tokenId, index, experts, expertCalls, finished, finishReason }) => ({
      tokenId,
      index,
      experts,
      expertCalls,
      finished,
      finishReason,
    }));

  it("gives every sequence the same tokens and experts alone as in a batch it joins mid-way", async () => {
    const alone = new Map<string, StepOutput[]>();
    for (const s of specs()) alone.set(s.id, (await runToEnd(rt, [s])).get(s.id)!);

    const [a, b, c] = specs();
    const batch = rt.createBatch();
    const got = new Map<string, StepOutput[]>([
      ["a", []],
      ["b", []],
      ["c", []],
    ]);
    batch.add(a);
    for (let step = 0; ; step++) {
      if (step === 3) batch.add(b); // b prefills its 52-token prompt while a decodes
      if (step === 5) batch.add(c);
      const out = await batch.step();
      if (out.length === 0 && step > 5) break;
      out.forEach((o) => got.get(o.id)!.push(o));
    }
    for (const id of ["a", "b", "c"]) {
      expect(got.get(id)!.length).toBeGreaterThan(0);
      expect(strip(got.get(id)!)).toEqual(strip(alone.get(id)!));
    }
    expect(got.get("a")!.map((o) => o.index)).toEqual([...Array(got.get("a")!.length).keys()]);
  });

  it("prefills together in one step (ONNX prompt attention), and a replay from scratch, give the solo tokens", async () => {
    const long =
      "0123456789 the prompt attention of this sequence runs as one ONNX call, 120 bytes or so, long enough!";
    const mk = () => [
      spec(rt, {
        id: "p",
        prompt: long,
        tierIds: resolveModeTiers(rt.tiers, "DEEP"),
        temperature: 0.7,
        routingSeed: 99n,
        maxTokens: 20,
      }),
      spec(rt, { id: "q", prompt: "short one", tierIds: resolveModeTiers(rt.tiers, "FAST"), maxTokens: 20 }),
      spec(rt, { id: "e", prompt: "", tierIds: resolveModeTiers(rt.tiers, "MAX"), temperature: 1.2, maxTokens: 20 }), // BOS only: TypeScript path
    ];
    const solo = new Map<string, StepOutput[]>();
    for (const s of mk()) solo.set(s.id, (await runToEnd(rt, [s])).get(s.id)!);
    const together = await runToEnd(rt, mk());
    const replay = await runToEnd(rt, mk().reverse());
    for (const id of ["p", "q", "e"]) {
      expect(solo.get(id)!.length).toBe(20);
      expect(strip(together.get(id)!)).toEqual(strip(solo.get(id)!));
      expect(strip(replay.get(id)!)).toEqual(strip(solo.get(id)!));
    }
  });

  it("keeps finished sequences until removed without advancing them", async () => {
    const batch = rt.createBatch();
    batch.add(spec(rt, { id: "short", maxTokens: 2 }));
    batch.add(spec(rt, { id: "long", maxTokens: 4 }));
    const ids: string[][] = [];
    for (;;) {
      const out = await batch.step();
      if (out.length === 0) break;
      ids.push(out.map((o) => o.id));
      const short = out.find((o) => o.id === "short");
      if (short?.index === 1) expect(short).toMatchObject({ finished: true, finishReason: "LENGTH" });
    }
    expect(ids).toEqual([["short", "long"], ["short", "long"], ["long"], ["long"]]);
    expect(batch.size).toBe(2);
    batch.remove("short");
    expect(batch.size).toBe(1);
  });

  it("step(only) advances just the named sequences, and their tokens stay those of a solo run", async () => {
    const [a, b] = specs();
    const solo = (await runToEnd(rt, [b])).get("b")!;
    const batch = rt.createBatch();
    batch.add(a);
    batch.add(b);
    const got: StepOutput[] = [];
    for (let i = 0; i < 6; i++) {
      const out = await batch.step(i % 2 === 0 ? ["b"] : undefined);
      if (i % 2 === 0) expect(out.map((o) => o.id)).toEqual(["b"]);
      got.push(...out.filter((o) => o.id === "b"));
    }
    expect(strip(got)).toEqual(strip(solo.slice(0, got.length)));
    expect(got).toHaveLength(6);
  });

  it("steps other sequences between a pass's layers (StepOptions.betweenLayers): every sequence keeps its solo tokens", async () => {
    const [a, b, c] = specs();
    const solo = new Map<string, StepOutput[]>();
    for (const s of specs()) solo.set(s.id, (await runToEnd(rt, [s])).get(s.id)!);
    const batch = rt.createBatch();
    batch.add(a);
    batch.add(c);
    const got = new Map<string, StepOutput[]>([
      ["a", []],
      ["b", []],
      ["c", []],
    ]);
    const note = (out: StepOutput[]) => out.forEach((o) => got.get(o.id)!.push(o));
    let hooks = 0;
    for (let i = 0; i < 8; i++) {
      if (i === 2) batch.add(b); // arrives during the run: its first steps go between layers
      const out = await batch.step(["a", "c"], {
        betweenLayers: async () => {
          hooks++;
          if (i < 2) return;
          await expect(batch.step(["a"])).rejects.toThrow(/cannot step a sequence of that pass/);
          note(await batch.step(["b"]));
        },
      });
      note(out);
    }
    // one call after each layer but the last; b stepped in each from the third pass on
    const between = rt.manifest.architecture.layers - 1;
    expect(between).toBeGreaterThan(0);
    expect(hooks).toBe(between * 8);
    expect(got.get("b")).toHaveLength(Math.min(16, between * 6));
    for (const id of ["a", "b", "c"])
      expect(strip(got.get(id)!)).toEqual(strip(solo.get(id)!.slice(0, got.get(id)!.length)));
    expect(got.get("a")).toHaveLength(8);
    // Outside a hook, a second step while one runs is refused as before.
    const running = batch.step(["a"]);
    await expect(batch.step(["c"])).rejects.toThrow(/while a step is running/);
    await running;
  });

  it("accounts KV bytes exactly per sequence, block by block, and releases them on remove", async () => {
    const { dModel, layers } = rt.manifest.architecture;
    const blockBytes = layers * 2 * 16 * dModel * 4;
    const prompt = "0123456789abcdefghij"; // 20 bytes + BOS = 21 positions after the first step
    const batch = rt.createBatch();
    batch.add(spec(rt, { id: "k", prompt, maxTokens: 30 }));
    batch.add(spec(rt, { id: "other", prompt: "z", maxTokens: 30 }));
    expect(batch.kvBytes("k")).toBe(0);
    for (let step = 1; step <= 20; step++) {
      await batch.step();
      const positions = 21 + (step - 1);
      expect(batch.kvBytes("k")).toBe(Math.ceil(positions / 16) * blockBytes);
      expect(batch.kvBytes("other")).toBe(Math.ceil((2 + step - 1) / 16) * blockBytes);
    }
    batch.remove("k");
    expect(batch.kvBytes("k")).toBe(0);
    expect(batch.kvBytes("other")).toBe(blockBytes * 2);
  });

  it("refuses bad input with BAD_USER_INPUT naming the field", () => {
    const batch = rt.createBatch();
    const refused = (over: Parameters<typeof spec>[1], field: string) => {
      let error: unknown;
      try {
        batch.add(spec(rt, over));
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(DomainError);
      expect(error).toMatchObject({ code: "BAD_USER_INPUT", field });
    };
    refused({ tierIds: ["tiny.t0", "other.t1"] }, "tierIds");
    refused({ tierIds: [] }, "tierIds");
    refused({ maxTokens: rt.maxContextTokens }, "maxTokens");
    refused({ prompt: "a".repeat(rt.maxContextTokens - 10), maxTokens: 10 }, "maxTokens");
    refused({ maxTokens: 0 }, "maxTokens");
    refused({ temperature: 2.5 }, "temperature");
    refused({ promptTokens: [300] }, "promptTokens");
    batch.add(spec(rt, { id: "x" }));
    refused({ id: "x" }, "id");
    // Exactly at the context limit is allowed: BOS + prompt + maxTokens = context.
    batch.add(spec(rt, { id: "fits", prompt: "a".repeat(rt.maxContextTokens - 11), maxTokens: 10 }));
  });

  it("generates only printable ASCII, newline or EOS, and reports timings split ONNX vs TypeScript", async () => {
    const batch = rt.createBatch();
    batch.add(spec(rt, { id: "t", temperature: 1.5, maxTokens: 40, tierIds: resolveModeTiers(rt.tiers, "MAX") }));
    const tokens: number[] = [];
    for (let out = await batch.step(); out.length > 0; out = await batch.step()) {
      tokens.push(out[0].tokenId);
      const t = batch.lastStepTimings!;
      expect(t.onnxMs).toBeGreaterThan(0);
      expect(t.tsMs).toBeGreaterThanOrEqual(0);
      expect(t.onnxMs + t.tsMs).toBeCloseTo(t.totalMs, 6);
    }
    for (const id of tokens) expect(id === 10 || (id >= 32 && id <= 126) || id === rt.tokenizer.eos).toBe(true);
  });
});
