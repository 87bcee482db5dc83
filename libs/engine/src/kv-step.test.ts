/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  buildModel,
  deriveRoutingSeed,
  KvCache,
  KvLedger,
  loadModel,
  resolveModeTiers,
  type ModelRuntime,
  type SequenceSpec,
  type StepOutput,
} from "@lite/model";
import { BatchEngine } from "./batch-engine";
import { EngineHarness } from "./testing/engine-fakes";
import type { FakeHandle } from "./testing/port-fakes";
import { harnessEngine, runtimeModel } from "./testing/runtime-engine";

/**
 * The engine over a batch under KV quotas (the real tiny model, one KV block = 8 KiB): a
 * tenant at its kvCacheBytes has its newest completions paused and resumed (no slot while
 * waiting "kv", no spin), every completion streams the tokens of an unpaused run, one that
 * alone outgrows the quota ends LENGTH with the tokens it streamed, and another tenant's
 * completion never pauses.
 */
describe("engine: KV quotas", () => {
  const BLOCK = new KvCache(2, 32).blockBytes; // tiny: 2 layers, d_model 32
  let modelDir: string;
  let ref: ModelRuntime;
  let rt: ModelRuntime;
  let ledger: KvLedger;
  let h: EngineHarness;
  let engine: BatchEngine;
  const steps: string[][] = [];
  beforeAll(async () => {
    modelDir = fs.mkdtempSync(path.join(os.tmpdir(), "lite-kv-engine-"));
    buildModel({ modelDir, modelName: "tiny", preset: "tiny" });
    ref = await loadModel({ modelDir, modelName: "tiny" });
    ledger = new KvLedger({ quotas: { kvCacheBytes: (t) => (t === "ten_tight" ? 4 * BLOCK : 64 * BLOCK) } });
    rt = await loadModel({ modelDir, modelName: "tiny", kvLedger: ledger });
    h = new EngineHarness();
    const model = runtimeModel(rt, (only) => void steps.push([...(only ?? [])]));
    engine = harnessEngine(h, model, { workerId: "w-kv", batchSize: 8 });
  });
  afterAll(async () => {
    await engine.stop();
    await rt.close();
    await ref.close();
    fs.rmSync(modelDir, { recursive: true, force: true });
  });

  interface Job {
    tenantId: string;
    prompt: string;
    seed: string;
    maxTokens: number;
  }

  function enqueue(j: Job): FakeHandle {
    const handle = h.enqueue(j.tenantId, { maxTokens: j.maxTokens });
    const tierIds = resolveModeTiers(rt.tiers, "FAST");
    Object.assign(handle.firstStart!, { prompt: j.prompt, seed: j.seed, tierIds, mode: "FAST" });
    Object.assign(h.store.rows.get(handle.completionId)!, { prompt: j.prompt, seed: j.seed, tierSet: tierIds });
    return handle;
  }

  async function unpaused(j: Job): Promise<number[]> {
    const s: SequenceSpec = {
      id: "ref",
      tenantId: j.tenantId,
      promptTokens: rt.tokenizer.encode(j.prompt),
      routingSeed: deriveRoutingSeed(j.tenantId, j.seed),
      tierIds: resolveModeTiers(rt.tiers, "FAST"),
      temperature: 0,
      maxTokens: j.maxTokens,
    };
    const batch = ref.createBatch();
    batch.add(s);
    const out: StepOutput[] = [];
    while (!out.some((o) => o.finished)) out.push(...(await batch.step()));
    return out.map((o) => o.tokenId);
  }

  it("pauses only the tenant at its quota, streams unpaused tokens, ends an outgrown completion LENGTH", async () => {
    const jobs: Job[] = [
      { tenantId: "ten_tight", prompt: "the tight tenant's first", seed: "1", maxTokens: 36 },
      { tenantId: "ten_tight", prompt: "the tight tenant's second", seed: "2", maxTokens: 30 },
      // BOS + 40 + 24 tokens fill four blocks (64 positions): it outgrows the quota after at most 24 tokens
      { tenantId: "ten_tight", prompt: "x".repeat(40), seed: "3", maxTokens: 40 },
      { tenantId: "ten_roomy", prompt: "another tenant entirely", seed: "4", maxTokens: 40 },
    ];
    const want = await Promise.all(jobs.map(unpaused));
    const handles = jobs.map(enqueue);
    engine.start();
    await h.until("every job done", () => handles.every((x) => x.done), 60_000);
    const streamed = (x: FakeHandle) => (h.tokens.streams.get(x.completionId) ?? []).map((t) => t.tokenId);
    handles.forEach((x, i) => {
      const got = streamed(x);
      const row = h.store.finalised.find((f) => f.completionId === x.completionId)!;
      expect(row).toMatchObject({ status: "COMPLETED", outputTokens: got.length });
      expect(got).toEqual(want[i].slice(0, got.length));
      if (got.length < want[i].length) expect(row.finishReason).toBe("LENGTH");
      else expect(got).toEqual(want[i]);
    });
    // the outgrown one stopped where its KV would have needed a fifth block
    expect(streamed(handles[2]).length).toBeLessThanOrEqual(24);
    expect(streamed(handles[3])).toEqual(want[3]);
    expect(ledger.pauses("ten_tight")).toBeGreaterThan(0);
    expect(ledger.pauses("ten_roomy")).toBe(0);
    // every step the roomy tenant's completion was in gave it a token: never paused, never waiting
    const roomy = handles[3].completionId;
    expect(steps.filter((ids) => ids.includes(roomy))).toHaveLength(want[3].length);
    expect(ledger.bytesByTenant().get("ten_tight") ?? 0).toBe(0);
    expect(h.tokens.violations).toEqual([]);
  }, 90_000);
});
