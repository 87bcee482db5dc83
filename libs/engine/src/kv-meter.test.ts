/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildModel, KvCache, KvLedger, loadModel, resolveModeTiers, type ModelRuntime } from "@lite/model";
import { BatchEngine } from "./batch-engine";
import type { EngineModel } from "./ports";
import { EngineHarness } from "./testing/engine-fakes";
import type { FakeHandle } from "./testing/port-fakes";
import { harnessEngine } from "./testing/runtime-engine";

/**
 * KV byte-seconds (kv-meter.ts) over the real tiny model's batch and KV ledger, on a clock
 * that moves 1 s per decode step and never between steps: each completion's usage carries
 * exactly Σ over the steps it was held of the KV bytes it held going into the step × 1 s —
 * including the steps it sat out paused (0 bytes: its KV was dropped) — computed here from
 * the batch's own kvBytes; each completion's count is its own (the tight tenant's pauses do
 * not move the roomy one's).
 */
describe("engine: KV byte-seconds", () => {
  const BLOCK = new KvCache(2, 32).blockBytes; // tiny: 2 layers, d_model 32
  let modelDir: string;
  let rt: ModelRuntime;
  let h: EngineHarness;
  let engine: BatchEngine;
  let nowMs = 1_000_000;
  /** per completion id: Σ KV bytes held going into each step while in the batch */
  const expectedByteSteps = new Map<string, number>();
  beforeAll(async () => {
    modelDir = fs.mkdtempSync(path.join(os.tmpdir(), "lite-kv-meter-"));
    buildModel({ modelDir, modelName: "tiny", preset: "tiny" });
    const ledger = new KvLedger({ quotas: { kvCacheBytes: (t) => (t === "ten_tight" ? 4 * BLOCK : 64 * BLOCK) } });
    rt = await loadModel({ modelDir, modelName: "tiny", kvLedger: ledger });
    h = new EngineHarness();
    const model: EngineModel = {
      tokenizer: rt.tokenizer,
      createBatch: () => {
        const b = rt.createBatch();
        const held = new Set<string>();
        return {
          add: (s) => {
            b.add(s);
            held.add(s.id);
          },
          remove: (id) => {
            b.remove(id);
            held.delete(id);
          },
          waiting: (id) => b.waiting(id),
          whenReady: () => b.whenReady(),
          kvBytes: (id) => b.kvBytes(id),
          step: async (only) => {
            for (const id of held) expectedByteSteps.set(id, (expectedByteSteps.get(id) ?? 0) + b.kvBytes(id));
            const out = await b.step(only);
            nowMs += 1000;
            return out;
          },
        };
      },
    };
    engine = harnessEngine(h, model, { workerId: "w-kv-meter", batchSize: 8, now: () => nowMs });
  });
  afterAll(async () => {
    await engine.stop();
    await rt.close();
    fs.rmSync(modelDir, { recursive: true, force: true });
  });

  function enqueue(tenantId: string, prompt: string, seed: string, maxTokens: number): FakeHandle {
    const handle = h.enqueue(tenantId, { maxTokens });
    const tierIds = resolveModeTiers(rt.tiers, "FAST");
    Object.assign(handle.firstStart!, { prompt, seed, tierIds, mode: "FAST" });
    Object.assign(h.store.rows.get(handle.completionId)!, { prompt, seed, tierSet: tierIds });
    return handle;
  }

  it("bills each completion the bytes it held × the seconds it held them, its own only", async () => {
    const handles = [
      enqueue("ten_tight", "the tight tenant's first", "1", 30),
      enqueue("ten_tight", "the tight tenant's second", "2", 30),
      enqueue("ten_roomy", "another tenant entirely", "3", 24),
    ];
    engine.start();
    await h.until("every job done", () => handles.every((x) => x.done), 60_000);
    for (const x of handles) {
      const usage = h.usage.records.filter((u) => u.completionId === x.completionId);
      expect(usage).toHaveLength(1);
      expect(usage[0].tenantId).toBe(x.tenantId);
      const want = expectedByteSteps.get(x.completionId)!;
      expect(want).toBeGreaterThan(0);
      // bytes × 1 s per step, exactly
      expect(usage[0].kvByteSeconds).toBe(want);
    }
    // the roomy completion held at least its prompt's block for each of its 24 tokens but the first
    expect(
      h.usage.records.find((u) => u.completionId === handles[2].completionId)!.kvByteSeconds,
    ).toBeGreaterThanOrEqual(23 * BLOCK);
    expect(h.tokens.violations).toEqual([]);
  }, 90_000);
});
