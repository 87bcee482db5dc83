/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
import { kvBlockBytes, kvCacheBytes } from "@lite/manifest";
import type { DecodeBatch, SequenceSpec, StepOutput } from "./decode-batch";
import { KvCache } from "./kv-cache";
import { KvLedger } from "./kv-ledger";
import type { ModelRuntime } from "./model-runtime";
import { resolveModeTiers } from "./mode-tiers";
import { buildTinyModel, openTiny, runToEnd, spec, type TinyModel } from "./testing/tiny-model.fixture";

/**
 * Per-tenant KV quotas on real ONNX sessions (tiny: 2 layers, d_model 32, so one KV block of
 * 16 positions is 8 KiB). Every step, each tenant's KV bytes over its live sequences are
 * sampled against its quota; paused sequences must resume with the tokens of an unpaused run.
 */
describe("KV quotas", () => {
  let m: TinyModel;
  let rt: ModelRuntime;
  const BLOCK = kvBlockBytes({ layers: 2, dModel: 32 });
  beforeAll(async () => {
    m = buildTinyModel();
    rt = await openTiny(m);
  });
  afterAll(async () => {
    await rt.close();
    m.cleanup();
  });

  /** A runtime on the same files whose batches charge `ledger`. */
  async function withLedger<T>(ledger: KvLedger, fn: (q: ModelRuntime) => Promise<T>): Promise<T> {
    const q = await openTiny(m, { kvLedger: ledger });
    try {
      return await fn(q);
    } finally {
      await q.close();
    }
  }

  const fixed = (table: Record<string, number>) => ({ kvCacheBytes: (t: string) => table[t] ?? Infinity });

  /** The tokens of each sequence run alone, without any quota. */
  async function unpaused(specs: SequenceSpec[]): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    for (const s of specs)
      out.set(
        s.id,
        (await runToEnd(rt, [s])).get(s.id)!.map((o) => o.tokenId),
      );
    return out;
  }

  /** Each output's expert calls (what the worker bills), of each sequence run alone without any quota. */
  async function unpausedCalls(specs: SequenceSpec[]): Promise<Map<string, Record<string, number>[]>> {
    const out = new Map<string, Record<string, number>[]>();
    for (const s of specs)
      out.set(
        s.id,
        (await runToEnd(rt, [s])).get(s.id)!.map((o) => o.expertCalls),
      );
    return out;
  }

  /**
   * Runs the batch to its end as the engine does (only sequences that are not waiting step),
   * checking every tenant's KV bytes against its quota after every step, over the batch
   * (kvBytes per sequence) and the ledger alike.
   */
  async function runSampled(
    batch: DecodeBatch,
    ledger: KvLedger,
    specs: SequenceSpec[],
    quotas: Record<string, number>,
  ): Promise<{ out: Map<string, StepOutput[]>; steps: number; kvWaits: Set<string> }> {
    specs.forEach((s) => batch.add(s));
    const out = new Map<string, StepOutput[]>(specs.map((s) => [s.id, []]));
    const kvWaits = new Set<string>();
    let steps = 0;
    for (let guard = 0; guard < 5000; guard++) {
      const live = specs.filter((s) => !out.get(s.id)!.at(-1)?.finished);
      if (live.length === 0) break;
      const free = live.filter((s) => {
        const w = batch.waiting(s.id);
        if (w === "kv") kvWaits.add(s.id);
        return w === undefined;
      });
      if (free.length === 0) {
        await batch.whenReady();
        continue;
      }
      for (const o of await batch.step(free.map((s) => s.id))) out.get(o.id)!.push(o);
      steps++;
      const byTenant = new Map<string, number>();
      for (const s of specs) byTenant.set(s.tenantId, (byTenant.get(s.tenantId) ?? 0) + batch.kvBytes(s.id));
      for (const [t, bytes] of byTenant) {
        expect(bytes).toBeLessThanOrEqual(quotas[t] ?? Infinity);
        expect(ledger.bytesByTenant().get(t) ?? 0).toBe(bytes);
      }
    }
    return { out, steps, kvWaits };
  }

  const tokensOf = (o: StepOutput[]) => o.filter((x) => x.tokenId >= 0).map((x) => x.tokenId);

  it("pauses the tenant's newest sequence, resumes it by one prefill, and gives the tokens and billed expert calls of an unpaused run", async () => {
    const deep = resolveModeTiers(rt.tiers, "DEEP");
    const specs = [
      spec(rt, { id: "old", prompt: "An older sequence that grows", tierIds: deep, maxTokens: 40 }),
      spec(rt, {
        id: "mid",
        prompt: "sampled, in the middle",
        tierIds: resolveModeTiers(rt.tiers, "MAX"),
        temperature: 0.9,
        routingSeed: 11n,
        maxTokens: 30,
      }),
      spec(rt, { id: "new", prompt: "the newest", tierIds: deep, temperature: 0.4, routingSeed: 3n, maxTokens: 30 }),
    ];
    const want = await unpaused(specs);
    const wantCalls = await unpausedCalls(specs);
    // Every sequence fits alone (at most 4 blocks), not all three at once.
    const quotas = { ten_a: 5 * BLOCK };
    const ledger = new KvLedger({ quotas: fixed(quotas) });
    await withLedger(ledger, async (q) => {
      const { out, kvWaits } = await runSampled(q.createBatch(), ledger, specs, quotas);
      for (const s of specs) {
        expect(tokensOf(out.get(s.id)!)).toEqual(want.get(s.id));
        expect(out.get(s.id)!.map((o) => o.index)).toEqual(want.get(s.id)!.map((_, i) => i));
        // a resuming prefill's recomputed rows are not reported (billed) again
        expect(out.get(s.id)!.map((o) => o.expertCalls)).toEqual(wantCalls.get(s.id));
      }
      expect(ledger.pauses("ten_a")).toBeGreaterThan(0);
      expect(kvWaits.has("new")).toBe(true);
      expect(kvWaits.has("old")).toBe(false); // the oldest never waits for KV
      expect(ledger.bytesByTenant().get("ten_a") ?? 0).toBe(0);
    });
  });

  it("never exceeds any tenant's quota under randomised multi-tenant workloads, and pauses only the tenant at its quota", async () => {
    const tiers = rt.tiers.map((t) => t.id);
    let tightPauses = 0;
    for (const seed of [1, 2, 3]) {
      let x = seed * 2654435761;
      const rand = (n: number) => {
        x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
        return x % n;
      };
      const tenants = ["ten_a", "ten_b", "ten_c"];
      // ten_a and ten_b are tight (2-4 blocks), ten_c has room for everything it runs.
      const quotas: Record<string, number> = {
        ten_a: (2 + rand(3)) * BLOCK,
        ten_b: (2 + rand(3)) * BLOCK,
        ten_c: 64 * BLOCK,
      };
      const specs: SequenceSpec[] = Array.from({ length: 7 }, (_, i) =>
        spec(rt, {
          id: `s${i}`,
          tenantId: tenants[i % 3],
          prompt: "abcdefghijklmnopqrstuvwxyz ".repeat(2).slice(0, 3 + rand(12)),
          tierIds: tiers.slice(0, 1 + rand(3)),
          temperature: rand(2) === 0 ? 0 : 0.8,
          routingSeed: BigInt(seed * 100 + i),
          maxTokens: 8 + rand(20),
        }),
      );
      const want = await unpaused(specs);
      const ledger = new KvLedger({ quotas: fixed(quotas) });
      await withLedger(ledger, async (q) => {
        const { out } = await runSampled(q.createBatch(), ledger, specs, quotas);
        for (const s of specs) {
          const got = out.get(s.id)!;
          const w = want.get(s.id)!;
          const last = got.at(-1)!;
          if (last.tokenId < 0) {
            // outgrew its tenant's quota alone: ends LENGTH with a prefix of the unpaused run
            expect(last).toMatchObject({ finished: true, finishReason: "LENGTH" });
            expect(kvCacheBytes({ layers: 2, dModel: 32 }, 1 + s.promptTokens.length + got.length)).toBeGreaterThan(
              quotas[s.tenantId],
            );
            expect(w.slice(0, got.length - 1)).toEqual(tokensOf(got));
          } else expect(tokensOf(got)).toEqual(w);
        }
        expect(ledger.pauses("ten_c")).toBe(0);
        tightPauses += ledger.pauses("ten_a") + ledger.pauses("ten_b");
      });
    }
    expect(tightPauses).toBeGreaterThan(0); // the workloads did pause and resume
  });

  it("a tenant at its KV quota never pauses or slows another tenant's sequence", async () => {
    const fast = resolveModeTiers(rt.tiers, "FAST");
    const greedy = Array.from({ length: 4 }, (_, i) =>
      spec(rt, { id: `a${i}`, tenantId: "ten_a", prompt: `tenant a, sequence ${i}`, tierIds: fast, maxTokens: 30 }),
    );
    const victim = spec(rt, { id: "b", tenantId: "ten_b", prompt: "tenant b alone", tierIds: fast, maxTokens: 30 });
    // ten_b's quota is exactly what its sequence needs at its longest: 1 + 14 + 30 positions.
    const quotas = { ten_a: 4 * BLOCK, ten_b: kvCacheBytes({ layers: 2, dModel: 32 }, 45) };
    const want = await unpaused([victim]);
    const ledger = new KvLedger({ quotas: fixed(quotas) });
    await withLedger(ledger, async (q) => {
      const batch = q.createBatch();
      const all = [victim, ...greedy];
      all.forEach((s) => batch.add(s));
      const got: StepOutput[] = [];
      const done = new Set<string>();
      while (done.size < all.length) {
        const ids = all.map((s) => s.id).filter((id) => !done.has(id) && batch.waiting(id) === undefined);
        if (!done.has("b")) expect(ids).toContain("b");
        const outs = await batch.step(ids);
        // b produced a token in every step until its end (never paused, never waiting on ten_a)
        if (!done.has("b")) expect(outs.filter((o) => o.id === "b")).toHaveLength(1);
        got.push(...outs.filter((o) => o.id === "b"));
        for (const o of outs) if (o.finished) done.add(o.id);
        const kv = ledger.bytesByTenant();
        expect(kv.get("ten_a") ?? 0).toBeLessThanOrEqual(quotas.ten_a);
        expect(kv.get("ten_b") ?? 0).toBeLessThanOrEqual(quotas.ten_b);
      }
      expect(got.map((o) => o.tokenId)).toEqual(want.get("b"));
      expect(ledger.pauses("ten_b")).toBe(0);
      expect(ledger.pauses("ten_a")).toBeGreaterThan(0);
    });
  });

  it("a prompt exactly at the quota gets its first token, then ends LENGTH; one over it ends ERROR naming kvCacheBytes", async () => {
    const fast = resolveModeTiers(rt.tiers, "FAST");
    const atLimit = spec(rt, { id: "at", tenantId: "ten_a", prompt: "x".repeat(15), tierIds: fast, maxTokens: 10 });
    const over = spec(rt, { id: "over", tenantId: "ten_b", prompt: "x".repeat(16), tierIds: fast, maxTokens: 10 });
    const want = await unpaused([atLimit]);
    const ledger = new KvLedger({ quotas: fixed({ ten_a: BLOCK, ten_b: BLOCK }) });
    await withLedger(ledger, async (q) => {
      const out = await runToEnd(q, [atLimit, over]);
      expect(out.get("at")!.map((o) => o.tokenId)).toEqual([want.get("at")![0], -1]);
      expect(out.get("at")![1]).toMatchObject({ index: 1, finished: true, finishReason: "LENGTH", text: "" });
      expect(out.get("over")).toEqual([
        expect.objectContaining({
          index: 0,
          tokenId: -1,
          finished: true,
          finishReason: "ERROR",
          error: `its prompt needs ${2 * BLOCK} bytes of KV cache, over its tenant's kvCacheBytes (${BLOCK})`,
        }),
      ]);
    });
  });

  it("a tenant's sequences wait for its quota's first read, then step", async () => {
    let answer!: (q: number) => void;
    const read = new Promise<number>((resolve) => (answer = resolve));
    const ledger = new KvLedger({ quotas: { kvCacheBytes: () => read } });
    await withLedger(ledger, async (q) => {
      const batch = q.createBatch();
      batch.add(spec(rt, { id: "s", prompt: "waiting for a quota" }));
      expect(batch.waiting("s")).toBe("kv");
      expect(await batch.step()).toEqual([]);
      const ready = batch.whenReady();
      answer(4 * BLOCK);
      await ready;
      expect(batch.waiting("s")).toBeUndefined();
      expect(await batch.step()).toHaveLength(1);
      expect(batch.kvBytes("s")).toBe(2 * BLOCK);
    });
  });

  it("one ledger bounds a tenant across the batches of two models: the newest pauses in whichever batch it is", async () => {
    const fast = resolveModeTiers(rt.tiers, "FAST");
    const old = spec(rt, { id: "old", prompt: "the older one, in model one", tierIds: fast, maxTokens: 40 });
    const young = spec(rt, { id: "young", prompt: "the newer one, in model two", tierIds: fast, maxTokens: 30 });
    const want = await unpaused([old, young]);
    // the older needs up to 5 blocks (BOS + 27 + 40 positions), the newer up to 4: not both
    const quota = 5 * BLOCK;
    const ledger = new KvLedger({ quotas: fixed({ ten_a: quota }) });
    const one = await openTiny(m, { kvLedger: ledger });
    const two = await openTiny(m, { kvLedger: ledger });
    try {
      const b1 = one.createBatch();
      const b2 = two.createBatch();
      b1.add(old);
      b2.add(young);
      const got = new Map<string, StepOutput[]>([
        ["old", []],
        ["young", []],
      ]);
      const done = () => [...got.values()].every((o) => o.at(-1)?.finished);
      while (!done()) {
        // the engine steps one batch at a time
        for (const [b, id] of [
          [b1, "old"],
          [b2, "young"],
        ] as const) {
          if (got.get(id)!.at(-1)?.finished || b.waiting(id) !== undefined) continue;
          got.get(id)!.push(...(await b.step([id])));
          expect(b1.kvBytes("old") + b2.kvBytes("young")).toBeLessThanOrEqual(quota);
        }
        if (b1.waiting("old") !== undefined && b2.waiting("young") !== undefined) await b2.whenReady();
      }
      expect(ledger.pauses("ten_a")).toBeGreaterThan(0);
      expect(tokensOf(got.get("old")!)).toEqual(want.get("old"));
      expect(tokensOf(got.get("young")!)).toEqual(want.get("young"));
    } finally {
      await one.close();
      await two.close();
    }
  });

  it("a lowered quota takes effect at the next step: the newest pauses, and resumes with its unpaused tokens", async () => {
    const fast = resolveModeTiers(rt.tiers, "FAST");
    const specs = [
      spec(rt, { id: "first", prompt: "a".repeat(20), tierIds: fast, maxTokens: 30 }),
      spec(rt, { id: "second", prompt: "b".repeat(20), tierIds: fast, maxTokens: 30 }),
    ];
    const want = await unpaused(specs);
    const table = { ten_a: 8 * BLOCK };
    const ledger = new KvLedger({ quotas: fixed(table) });
    await withLedger(ledger, async (q) => {
      const batch = q.createBatch();
      specs.forEach((s) => batch.add(s));
      const got = new Map<string, StepOutput[]>(specs.map((s) => [s.id, []]));
      for (let i = 0; i < 14; i++) for (const o of await batch.step()) got.get(o.id)!.push(o);
      // BOS + 20 + 14 = 35 positions each: 3 blocks each, 6 of 8
      expect(batch.kvBytes("first") + batch.kvBytes("second")).toBe(6 * BLOCK);
      expect(ledger.pauses("ten_a")).toBe(0);
      table.ten_a = 4 * BLOCK; // each still fits alone (at most BOS + 20 + 30 = 51 positions)
      for (const o of await batch.step()) got.get(o.id)!.push(o);
      expect(batch.kvBytes("second")).toBe(0);
      expect(batch.waiting("second")).toBe("kv");
      expect(ledger.pauses("ten_a")).toBe(1);
      while (![...got.values()].every((o) => o.at(-1)?.finished)) {
        const ids = specs.map((s) => s.id).filter((id) => !got.get(id)!.at(-1)?.finished && !batch.waiting(id));
        if (ids.length === 0) await batch.whenReady();
        else for (const o of await batch.step(ids)) got.get(o.id)!.push(o);
        expect(batch.kvBytes("first") + batch.kvBytes("second")).toBeLessThanOrEqual(4 * BLOCK);
      }
      for (const s of specs) expect(tokensOf(got.get(s.id)!)).toEqual(want.get(s.id));
      expect(ledger.bytesByTenant().get("ten_a")).toBe(0);
    });
  });

  it("an arrival step between a pass's layers pauses no one: under a quota lowered mid-pass the arrival waits, and the next step pauses the pass's newest", async () => {
    const quotas: Record<string, number> = { ten_a: 2 * BLOCK };
    const ledger = new KvLedger({ quotas: fixed(quotas) });
    await withLedger(ledger, async (q) => {
      const batch = q.createBatch();
      batch.add(spec(q, { id: "b1", prompt: "first" }));
      batch.add(spec(q, { id: "b2", prompt: "second" }));
      await batch.step(["b1", "b2"]);
      batch.add(spec(q, { id: "a", prompt: "arrives" }));
      let nested: StepOutput[] | undefined;
      const out = await batch.step(["b1", "b2"], {
        betweenLayers: async () => {
          if (nested) return;
          quotas.ten_a = BLOCK; // lowered while the pass runs: b2 no longer fits beside b1
          nested = await batch.step(["a"]);
        },
      });
      expect(nested).toEqual([]); // the arrival waits for a step that may pause
      expect(out.map((o) => o.id).sort()).toEqual(["b1", "b2"]);
      expect(ledger.pauses("ten_a")).toBe(0);
      // The next step applies the lowered quota: the pass's newest pauses, the oldest steps.
      const next = await batch.step(["b1", "b2", "a"]);
      expect(next.map((o) => o.id)).toEqual(["b1"]);
      expect(ledger.pauses("ten_a")).toBe(1);
      expect(ledger.bytesByTenant().get("ten_a")).toBeLessThanOrEqual(BLOCK);
    });
  });

  it("a dropped sequence's KV blocks are zeroed and held by no other sequence", () => {
    const a = new KvCache(2, 32, 16, 2);
    const b = new KvCache(2, 32, 16, 2);
    const row = Float32Array.from({ length: 32 }, (_, i) => i + 1);
    a.grow(20);
    for (let p = 0; p < 20; p++) a.write(1, p, row, 0, row, 0);
    const dropped = [...a.heldBlocks()];
    expect(dropped).toHaveLength(2);
    expect(a.bytes()).toBe(2 * BLOCK);
    expect(dropped.some((blk) => blk.some((v) => v !== 0))).toBe(true);
    a.release();
    expect(a.bytes()).toBe(0);
    expect(dropped.every((blk) => blk.every((v) => v === 0))).toBe(true);
    // new blocks, for a or for another cache, are fresh: never one of the dropped
    b.grow(40);
    a.grow(5);
    for (const blk of [...b.heldBlocks(), ...a.heldBlocks()]) {
      expect(dropped.includes(blk)).toBe(false);
      expect(dropped.some((d) => d.buffer === blk.buffer)).toBe(false);
      expect(blk.every((v) => v === 0)).toBe(true);
    }
    expect(b.bytesFor(40)).toBe(b.bytes());
  });
});
