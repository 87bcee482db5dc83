/**
 * decode: the bare decode loop's tokens/s at batch 1, 8 and 32, modes FAST and DEEP, on the
 * `default` model (built first if missing), one process, CPU, 1 intra-op thread.
 * Method, per (mode, batch): one unmeasured warm-up run loads every expert session the run
 * will touch (so cold-load cost is not counted); then a fresh batch of B sequences (distinct
 * prompts and seeds, temperature 0.8) prefills, and the next DECODE_STEPS steps are timed.
 * Reported: tokens/s, ms per step split ONNX vs TypeScript, expert runs per step, and the
 * ratios batch-N ÷ batch-1 and DEEP ÷ FAST.
 */
import {
  deriveRoutingSeed,
  ensureModel,
  loadModel,
  resolveModeTiers,
  type ModelRuntime,
  type TierMode,
} from "@lite/model";
import type { BenchContext, BenchResult, Benchmark } from "./lib/bench-types";

const BATCHES = [1, 8, 32];
const MODES: TierMode[] = ["FAST", "DEEP"];
const DECODE_STEPS = 48;
const MODEL = "default";

interface Cell {
  mode: TierMode;
  batch: number;
  tokensPerSecond: number;
  msPerStep: number;
  onnxMsPerStep: number;
  tsMsPerStep: number;
  expertRunsPerStep: number;
}

const PROMPTS = [
  "Once upon a time",
  "The weather today",
  "In the beginning",
  "Dear reader,",
  "Notes on routing",
  "A quick test",
];

async function measure(rt: ModelRuntime, mode: TierMode, batchSize: number, label: string): Promise<Cell> {
  const tierIds = resolveModeTiers(rt.tiers, mode);
  const batch = rt.createBatch();
  for (let i = 0; i < batchSize; i++) {
    batch.add({
      id: `b${i}`,
      tenantId: `bench-${i % 4}`,
      promptTokens: rt.tokenizer.encode(`${PROMPTS[i % PROMPTS.length]} #${i}`),
      routingSeed: deriveRoutingSeed(`bench-${i % 4}`, `${label}-${i}`),
      tierIds,
      temperature: 0.8,
      maxTokens: DECODE_STEPS + 1,
    });
  }
  await batch.step(); // prefill, not measured
  let tokens = 0;
  let onnxMs = 0;
  let tsMs = 0;
  let expertRuns = 0;
  const start = performance.now();
  for (let s = 0; s < DECODE_STEPS; s++) {
    const out = await batch.step();
    tokens += out.length;
    const t = batch.lastStepTimings!;
    onnxMs += t.onnxMs;
    tsMs += t.tsMs;
    expertRuns += t.expertRuns;
  }
  const elapsed = performance.now() - start;
  return {
    mode,
    batch: batchSize,
    tokensPerSecond: (tokens / elapsed) * 1000,
    msPerStep: elapsed / DECODE_STEPS,
    onnxMsPerStep: onnxMs / DECODE_STEPS,
    tsMsPerStep: tsMs / DECODE_STEPS,
    expertRunsPerStep: expertRuns / DECODE_STEPS,
  };
}

const fmt = (n: number, digits = 1) => n.toFixed(digits);

export const bench: Benchmark = {
  name: "decode",
  description:
    "Bare decode loop tokens/s at batch 1, 8 and 32, modes FAST and DEEP, `default` model, CPU, 1 intra-op thread.",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { generated } = await ensureModel({ modelDir: ctx.modelDir, modelName: MODEL, preset: "default" });
    if (generated) ctx.log("decode: built the default model");
    const rt = await loadModel({ modelDir: ctx.modelDir, modelName: MODEL, intraOpThreads: 1 });
    const cells: Cell[] = [];
    try {
      for (const mode of MODES) {
        for (const b of BATCHES) {
          await measure(rt, mode, b, "warm"); // loads the sessions this shape touches
          const cell = await measure(rt, mode, b, "measured");
          ctx.log(`decode: ${mode} batch ${b}: ${fmt(cell.tokensPerSecond)} tokens/s`);
          cells.push(cell);
        }
      }
    } finally {
      await rt.close();
    }
    const get = (mode: TierMode, b: number) => cells.find((c) => c.mode === mode && c.batch === b)!;
    const ratios = {
      batchSpeedup: Object.fromEntries(
        MODES.map((m) => [
          m,
          Object.fromEntries(BATCHES.map((b) => [`b${b}`, get(m, b).tokensPerSecond / get(m, 1).tokensPerSecond])),
        ]),
      ),
      deepOverFast: Object.fromEntries(
        BATCHES.map((b) => [`b${b}`, get("DEEP", b).tokensPerSecond / get("FAST", b).tokensPerSecond]),
      ),
    };
    const rows = cells.map((c) => {
      const speedup = ratios.batchSpeedup[c.mode][`b${c.batch}`];
      return `| ${c.mode} | ${c.batch} | ${fmt(c.tokensPerSecond)} | ${fmt(speedup, 2)}× | ${fmt(c.msPerStep, 2)} | ${fmt(c.onnxMsPerStep, 2)} | ${fmt(c.tsMsPerStep, 2)} | ${fmt(c.expertRunsPerStep)} |`;
    });
    const summary = [
      `Model \`${MODEL}\` (${rt.manifest.architecture.layers} layers, d_model ${rt.manifest.architecture.dModel}), ${ctx.cores} cores, ${DECODE_STEPS} timed decode steps after prefill and a warm-up run.`,
      "",
      "| mode | batch | tokens/s | vs batch 1 | ms/step | ONNX ms/step | TS ms/step | expert runs/step |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
      ...rows,
      "",
      `DEEP ÷ FAST tokens/s: ${BATCHES.map((b) => `batch ${b} ${fmt(ratios.deepOverFast[`b${b}`], 2)}`).join(", ")}.`,
    ].join("\n");
    return { model: MODEL, manifestSha256: rt.manifestSha256, decodeSteps: DECODE_STEPS, cells, ratios, summary };
  },
};

export default bench;
