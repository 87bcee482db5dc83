import * as fs from "node:fs";
import * as path from "node:path";

/** The limits a request is checked against before it is queued. */
export interface ModelLimits {
  /** architecture.maxContextTokens: prompt + generated tokens of one sequence */
  maxContextTokens: number;
}

/**
 * `<modelDir>/<modelName>/manifest.json`'s limits, or undefined when the file is absent or
 * does not state them. Reads without verifying: the API only pre-checks requests with it,
 * and the worker verifies the manifest (signature, hashes) before running anything.
 */
export function readModelLimits(modelDir: string, modelName: string): ModelLimits | undefined {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(modelDir, modelName, "manifest.json"), "utf8")) as {
      architecture?: { maxContextTokens?: unknown };
    };
    const n = m.architecture?.maxContextTokens;
    return typeof n === "number" && Number.isInteger(n) && n > 0 ? { maxContextTokens: n } : undefined;
  } catch {
    return undefined;
  }
}
