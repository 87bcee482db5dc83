/**
 * The bare in-process decode loop (`npm run generate -- …`): builds the model if missing,
 * runs one prompt (or B copies of it in one batch) and prints the text, or with --json one
 * object with text, tokens, experts per layer, timings.
 *
 *   --prompt P --mode FAST|BALANCED|DEEP|MAX --seed S --max-tokens N [--batch B] [--tenant T]
 *   [--temperature X (default 0, as createCompletion)] [--json] [--model NAME (default "default")] [--model-dir DIR (default var/models)]
 *
 * Seeds: with --tenant T the routing seed is deriveRoutingSeed(T, S), exactly as a worker
 * derives it for tenant T; without it, deriveRoutingSeed("", S).
 * Environment (read here, not in the library): MODEL_PUBLIC_KEY, ORT_EXECUTION_PROVIDERS, ORT_INTRA_OP_THREADS.
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import {
  deriveRoutingSeed,
  ensureModel,
  isPresetName,
  loadModel,
  resolveModeTiers,
  TIER_MODES,
  type TierMode,
} from "@lite/model";
import { DEFAULT_TIER_MODE } from "@lite/core";

function fail(message: string): never {
  process.stderr.write(`generate: ${message}\n`);
  process.exit(2);
}

function intArg(name: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      prompt: { type: "string" },
      mode: { type: "string", default: "FAST" },
      seed: { type: "string", default: "0" },
      "max-tokens": { type: "string" },
      batch: { type: "string" },
      tenant: { type: "string" },
      temperature: { type: "string" },
      json: { type: "boolean", default: false },
      model: { type: "string", default: "default" },
      "model-dir": { type: "string", default: "var/models" },
    },
  });
  if (values.prompt === undefined) fail("--prompt is required");
  const mode = (values.mode ?? DEFAULT_TIER_MODE).toUpperCase() as TierMode;
  if (!TIER_MODES.includes(mode)) fail(`--mode must be one of ${TIER_MODES.join(", ")}`);
  const maxTokens = intArg("max-tokens", values["max-tokens"], 64, 1);
  const batchSize = intArg("batch", values.batch, 1, 1);
  const temperature = values.temperature === undefined ? 0 : Number(values.temperature);
  if (!(temperature >= 0 && temperature <= 2)) fail("--temperature must be within 0..2");
  const modelDir = path.resolve(values["model-dir"] ?? "var/models");
  const modelName = values.model ?? "default";

  const ensureStart = performance.now();
  let generated = false;
  if (isPresetName(modelName))
    ({ generated } = await ensureModel({
      modelDir,
      modelName,
      preset: modelName,
      publicKey: process.env.MODEL_PUBLIC_KEY,
    }));
  const ensureMs = performance.now() - ensureStart;
  const loadStart = performance.now();
  const threads = process.env.ORT_INTRA_OP_THREADS ? Number(process.env.ORT_INTRA_OP_THREADS) : undefined;
  const runtime = await loadModel({
    modelDir,
    modelName,
    publicKey: process.env.MODEL_PUBLIC_KEY,
    executionProviders: process.env.ORT_EXECUTION_PROVIDERS?.split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    intraOpThreads: threads,
  });
  const loadMs = performance.now() - loadStart;
  try {
    const tierIds = resolveModeTiers(runtime.tiers, mode);
    const tenantId = values.tenant ?? "";
    const routingSeed = deriveRoutingSeed(tenantId, values.seed ?? "0");
    const promptTokens = runtime.tokenizer.encode(values.prompt);
    const batch = runtime.createBatch();
    for (let b = 0; b < batchSize; b++) {
      batch.add({ id: `seq-${b}`, tenantId, promptTokens, routingSeed, tierIds, temperature, maxTokens });
    }
    const tokens: number[][] = Array.from({ length: batchSize }, () => []);
    const layers = runtime.manifest.architecture.layers;
    const experts = Array.from({ length: layers }, () => new Set<string>());
    const expertCalls: Record<string, number> = {};
    const steps: { totalMs: number; onnxMs: number; tsMs: number }[] = [];
    const decodeStart = performance.now();
    for (;;) {
      const out = await batch.step();
      if (out.length === 0) break;
      const t = batch.lastStepTimings!;
      steps.push({ totalMs: t.totalMs, onnxMs: t.onnxMs, tsMs: t.tsMs });
      for (const o of out) {
        const b = Number(o.id.slice(4));
        if (o.tokenId !== runtime.tokenizer.eos) tokens[b].push(o.tokenId);
        if (b !== 0) continue;
        o.experts.forEach((ids, l) => ids.forEach((id) => experts[l].add(id)));
        for (const [tier, n] of Object.entries(o.expertCalls)) expertCalls[tier] = (expertCalls[tier] ?? 0) + n;
      }
    }
    const decodeMs = performance.now() - decodeStart;
    const consistent = tokens.every((t) => t.length === tokens[0].length && t.every((id, i) => id === tokens[0][i]));
    const text = runtime.tokenizer.decode(tokens[0]);
    const sum = (k: "totalMs" | "onnxMs" | "tsMs") => steps.reduce((a, s) => a + s[k], 0);
    if (values.json) {
      const result = {
        model: runtime.name,
        manifestSha256: runtime.manifestSha256,
        mode,
        tierIds,
        tenant: values.tenant ?? null,
        routingSeed: routingSeed.toString(),
        temperature,
        batch: batchSize,
        batchConsistent: consistent,
        text,
        tokens: tokens[0],
        experts: experts.map((s) => [...s].sort()),
        expertCalls,
        timings: {
          generatedModel: generated,
          ensureMs: round(ensureMs),
          loadMs: round(loadMs),
          decodeMs: round(decodeMs),
          steps: steps.length,
          onnxMs: round(sum("onnxMs")),
          tsMs: round(sum("tsMs")),
          tokensPerSecond: round((tokens.reduce((a, t) => a + t.length, 0) / decodeMs) * 1000),
        },
      };
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } else {
      process.stdout.write(`${text}\n`);
    }
    if (!consistent) fail("sequences of the batch diverged (batch invariance broken)");
  } finally {
    await runtime.close();
  }
}

const round = (ms: number) => Math.round(ms * 100) / 100;

main().catch((e: unknown) => {
  fail(e instanceof Error ? e.message : String(e));
});
