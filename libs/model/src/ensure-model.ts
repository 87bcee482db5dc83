import * as fs from "node:fs";
import * as path from "node:path";
import { readManifest } from "@lite/manifest";
import { buildModel } from "./model-builder";
import type { PresetName } from "./model-presets";

export interface EnsureModelOptions {
  modelDir: string;
  modelName: string;
  preset: PresetName;
  /** trusted key to verify an existing model with (as loadModel would) */
  publicKey?: string;
}

const LOCK_POLL_MS = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function isValid(opts: EnsureModelOptions): boolean {
  try {
    readManifest(path.join(opts.modelDir, opts.modelName), { publicKey: opts.publicKey, verifyAllHashes: true });
    return true;
  } catch {
    return false;
  }
}

/**
 * Builds the model if it is missing or fails verification (signature, every file's hash).
 * Several processes may start at once (API and worker): one takes `<name>.lock` (holding
 * its pid) and builds; the others wait for the lock to go, then re-check. A lock whose
 * process is gone is taken over.
 */
export async function ensureModel(opts: EnsureModelOptions): Promise<{ generated: boolean }> {
  if (isValid(opts)) return { generated: false };
  fs.mkdirSync(opts.modelDir, { recursive: true });
  const lock = path.join(opts.modelDir, `${opts.modelName}.lock`);
  for (;;) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: "wx" });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      let content: string;
      try {
        content = fs.readFileSync(lock, "utf8");
      } catch (e2) {
        // The holder removed the lock between our create and our read: try to take it again.
        if ((e2 as NodeJS.ErrnoException).code === "ENOENT") continue;
        throw e2;
      }
      const holder = Number(content);
      // Empty: the holder created the file and has not written its pid yet; it is not stale.
      if (content !== "" && (!Number.isInteger(holder) || holder <= 0 || !pidAlive(holder))) {
        fs.rmSync(lock, { force: true });
        continue;
      }
      await sleep(LOCK_POLL_MS);
      if (!fs.existsSync(lock) && isValid(opts)) return { generated: false };
    }
  }
  try {
    if (isValid(opts)) return { generated: false };
    buildModel({ modelDir: opts.modelDir, modelName: opts.modelName, preset: opts.preset });
    return { generated: true };
  } finally {
    fs.rmSync(lock, { force: true });
  }
}
