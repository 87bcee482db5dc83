import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildModel, loadModel, type ExpertRef, type ExpertStoreContext, type ModelRuntime } from "@lite/model";
import { ExpertResidency } from "../expert-residency";
import type { ExpertResidencyOptions } from "../expert-residency.types";
import { TieredExpertStore } from "../tiered-expert-store";

/**
 * Test helpers: the `tiny` model built once per file, its expert refs and the context a
 * store needs, and fresh residencies over it (real files, real onnxruntime sessions).
 */
export interface TinyCacheModel {
  modelDir: string;
  runtime: ModelRuntime;
  ctx: ExpertStoreContext;
  /** every expert of every tier and layer, in tier, layer, slot order */
  refs: ExpertRef[];
  /** refs of one tier, layer 0 first */
  tierRefs(tierIndex: number): ExpertRef[];
  cleanup(): Promise<void>;
}

export async function openTinyCacheModel(): Promise<TinyCacheModel> {
  const modelDir = fs.mkdtempSync(path.join(os.tmpdir(), "lite-cache-"));
  const build = buildModel({ modelDir, modelName: "tiny", preset: "tiny" });
  let ctx: ExpertStoreContext | undefined;
  // The runtime's own store is only used to learn the context (root, session options).
  const runtime = await loadModel({
    modelDir,
    modelName: "tiny",
    expertStore: (c) => {
      ctx = c;
      return new TieredExpertStore(new ExpertResidency(fit(1)), c);
    },
  });
  const tierRefs = (i: number) => runtime.expertRefs(runtime.tiers[i].id).flat();
  return {
    modelDir,
    runtime,
    ctx: ctx ?? { root: build.root, sessionOptions: {} },
    refs: runtime.tiers.flatMap((_, i) => tierRefs(i)),
    tierRefs,
    cleanup: async () => {
      await runtime.close();
      fs.rmSync(modelDir, { recursive: true, force: true });
    },
  };
}

/** Options with the given capacities (bytes) and tenants without quotas. */
export function fit(hotCapacityBytes: number, warmCapacityBytes = hotCapacityBytes): ExpertResidencyOptions {
  return {
    hotCapacityBytes: Math.max(1, hotCapacityBytes),
    warmCapacityBytes: Math.max(1, warmCapacityBytes),
    quotas: { quotaOf: () => ({ weight: 1 }) },
  };
}

export const tenants = (...ids: string[]): ReadonlySet<string> => new Set(ids);
