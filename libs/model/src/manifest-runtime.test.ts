/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
import * as fs from "node:fs";
import * as path from "node:path";
import { ManifestError, signManifest } from "@lite/manifest";
import { createPrivateKey } from "node:crypto";
import { buildTinyModel, openTiny, runToEnd, spec, type TinyModel } from "./testing/tiny-model.fixture";

/**
 * Manifest verification as the runtime applies it. The reader's refusals one by one
 * (signature, version, schema, budget, sizes, keys) are tested in libs/manifest; here: a
 * built model loads, a tampered expert is refused at load (verifyAllHashes) or on first use,
 * and a newer manifest's unknown tier is skipped by a model that still runs.
 */

/** Rewrites manifest.json through `edit` and re-signs it with the model dir's own key. */
function resign(m: TinyModel, edit: (manifest: Record<string, unknown>) => void): void {
  const file = path.join(m.root, "manifest.json");
  const manifest = JSON.parse(fs.readFileSync(file, "utf8"));
  edit(manifest);
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2));
  fs.writeFileSync(file, bytes);
  const key = createPrivateKey(fs.readFileSync(path.join(m.modelDir, "signing-key.pem")));
  fs.writeFileSync(path.join(m.root, "manifest.sig"), signManifest(key, bytes));
}

async function refusal(m: TinyModel, opts = {}): Promise<ManifestError> {
  try {
    const rt = await openTiny(m, opts);
    await rt.close();
  } catch (e) {
    expect(e).toBeInstanceOf(ManifestError);
    return e as ManifestError;
  }
  throw new Error("model was accepted");
}

/** Flips one byte in the middle of a file, keeping its size. */
function flipByte(file: string): void {
  const bytes = fs.readFileSync(file);
  bytes[bytes.length >> 1] ^= 0x01;
  fs.writeFileSync(file, bytes);
}

describe("manifest verification in the runtime", () => {
  let m: TinyModel;
  beforeEach(() => {
    m = buildTinyModel();
  });
  afterEach(() => m.cleanup());

  const expertFile = "experts/t0/l0/g0-e0.onnx";

  it("loads an untouched model", async () => {
    const rt = await openTiny(m, { verifyAllHashes: true });
    expect(rt.manifestSha256).toBe(m.build.manifestSha256);
    await rt.close();
  });

  it("refuses a tampered expert file at load with verifyAllHashes, naming the file", async () => {
    flipByte(path.join(m.root, expertFile));
    const e = await refusal(m, { verifyAllHashes: true });
    expect(e.manifestReason).toBe("FILE_TAMPERED");
    expect(e.file).toBe(expertFile);
    expect(e.message).toContain(expertFile);
  });

  it("refuses a tampered expert file on first use (lazy verification) and keeps refusing", async () => {
    const rt = await openTiny(m); // dense files are hashed at load, experts when first loaded
    try {
      // Tamper every hot expert of layer 0, so whichever the router picks is refused.
      for (const ref of rt.expertRefs("tiny.t0")[0]) flipByte(path.join(m.root, ref.file.path));
      for (let i = 0; i < 2; i++) {
        const err = await runToEnd(rt, [spec(rt, { id: `s${i}` })]).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ManifestError);
        expect((err as ManifestError).manifestReason).toBe("FILE_TAMPERED");
        expect((err as ManifestError).message).toMatch(/experts\/t0\/l0\/g\d-e\d\.onnx/);
      }
    } finally {
      await rt.close();
    }
  });

  it("refuses a tampered dense file at load", async () => {
    flipByte(path.join(m.root, "dense/l1-router.onnx"));
    const e = await refusal(m);
    expect(e.manifestReason).toBe("FILE_TAMPERED");
    expect(e.message).toContain("dense/l1-router.onnx");
  });

  it("skips unknown kinds of tier from a newer minor version and still runs", async () => {
    resign(m, (x) => {
      x.manifestVersion = "1.7";
      x.futureField = { anything: true };
      (x.tiers as Record<string, unknown>[])[0].futureTierField = 3;
      (x.tiers as Record<string, unknown>[]).push({ id: "tiny.t9", placement: "REMOTE_GPU", whatever: [1, 2] });
    });
    const rt = await openTiny(m);
    try {
      expect(rt.tiers.map((t) => t.id)).toEqual(["tiny.t0", "tiny.t1", "tiny.t2", "tiny.t3"]);
      expect(rt.ignoredTiers).toEqual(["tiny.t9"]);
      const out = await runToEnd(rt, [spec(rt, { tierIds: ["tiny.t0", "tiny.t1"] })]);
      expect(out.get("s")!.length).toBe(12);
    } finally {
      await rt.close();
    }
  });
});
