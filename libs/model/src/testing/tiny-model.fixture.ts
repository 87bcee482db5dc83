import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildModel, type BuildModelResult } from "../model-builder";
import { loadModel, type ModelRuntime, type ModelRuntimeOptions } from "../model-runtime";
import type { SequenceSpec, StepOutput } from "../decode-batch";

/** Test helpers: a fresh tiny model in a temp dir, and a run-to-completion loop. */

export interface TinyModel {
  modelDir: string;
  modelName: string;
  build: BuildModelResult;
  root: string;
  cleanup(): void;
}

export function buildTinyModel(modelName = "tiny"): TinyModel {
  const modelDir = fs.mkdtempSync(path.join(os.tmpdir(), "lite-model-"));
  const build = buildModel({ modelDir, modelName, preset: "tiny" });
  return {
    modelDir,
    modelName,
    build,
    root: build.root,
    cleanup: () => fs.rmSync(modelDir, { recursive: true, force: true }),
  };
}

export function openTiny(m: TinyModel, extra: Partial<ModelRuntimeOptions> = {}): Promise<ModelRuntime> {
  return loadModel({ modelDir: m.modelDir, modelName: m.modelName, ...extra });
}

export function spec(runtime: ModelRuntime, over: Partial<SequenceSpec> & { prompt?: string }): SequenceSpec {
  const { prompt, ...rest } = over;
  return {
    id: "s",
    tenantId: "ten_a",
    promptTokens: runtime.tokenizer.encode(prompt ?? "hello"),
    routingSeed: 42n,
    tierIds: [runtime.tiers[0].id],
    temperature: 0,
    maxTokens: 12,
    ...rest,
  };
}

/**
 * Runs a batch until every sequence finishes; returns every step's outputs by sequence id.
 * With parking, a step in which every sequence waits (a load, a timing pad) waits for one.
 */
export async function runToEnd(runtime: ModelRuntime, specs: SequenceSpec[]): Promise<Map<string, StepOutput[]>> {
  const batch = runtime.createBatch();
  specs.forEach((s) => batch.add(s));
  const out = new Map<string, StepOutput[]>(specs.map((s) => [s.id, []]));
  for (;;) {
    const step = await batch.step();
    step.forEach((o) => out.get(o.id)!.push(o));
    if (step.length > 0) continue;
    if (!specs.some((s) => batch.waiting(s.id))) break;
    await batch.whenReady();
  }
  return out;
}
