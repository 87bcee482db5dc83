import * as fs from "node:fs";
import * as path from "node:path";
import type { KvShape } from "./kv-bytes";

/** The limits a request is checked against before it is queued. */
export interface ModelLimits {
  /** architecture.maxContextTokens: prompt + generated tokens of one sequence */
  maxContextTokens: number;
  /** architecture.layers and dModel: what a prompt's KV bytes are computed from (kv-bytes.ts); absent when the manifest lacks them */
  kvShape?: KvShape;
}

/**
 * `<modelDir>/<modelName>/manifest.json`'s limits, or undefined when the file is absent or
 * does not state them. Reads without verifying: the API only pre-checks requests with it,
 * and the worker verifies the manifest (signature, hashes) before running anything.
 */
export function readModelLimits(modelDir: string, modelName: string): ModelLimits | undefined {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(modelDir, modelName, "manifest.json"), "utf8")) as {
      architecture?: { maxContextTokens?: unknown; layers?: unknown; dModel?: unknown };
    };
    const n = m.architecture?.maxContextTokens;
    if (!isPosInt(n)) return undefined;
    const { layers, dModel } = m.architecture ?? {};
    return isPosInt(layers) && isPosInt(dModel)
      ? { maxContextTokens: n, kvShape: { layers, dModel } }
      : { maxContextTokens: n };
  } catch {
    return undefined;
  }
}

function isPosInt(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v > 0;
}
