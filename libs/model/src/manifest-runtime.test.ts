/** @jest-environment ./libs/model/src/testing/ort-test-environment.js */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { signManifest } from "./manifest-signing";
import { ModelError } from "./model.errors";
import { buildTinyModel, openTiny, runToEnd, spec, type TinyModel } from "./testing/tiny-model.fixture";

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

async function refusal(m: TinyModel, opts = {}): Promise<ModelError> {
  try {
    const rt = await openTiny(m, opts);
    await rt.close();
  } catch (e) {
    expect(e).toBeInstanceOf(ModelError);
    return e as ModelError;
  }
  throw new Error("model was accepted");
}

/** Flips one byte in the middle of a file, keeping its size. */
function flipByte(file: string): void {
  const bytes = fs.readFileSync(file);
  bytes[bytes.length >> 1] ^= 0x01;
  fs.writeFileSync(file, bytes);
}

describe("manifest verification", () => {
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
    expect(e.modelReason).toBe("FILE_TAMPERED");
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
        expect(err).toBeInstanceOf(ModelError);
        expect((err as ModelError).modelReason).toBe("FILE_TAMPERED");
        expect((err as ModelError).message).toMatch(/experts\/t0\/l0\/g\d-e\d\.onnx/);
      }
    } finally {
      await rt.close();
    }
  });

  it("refuses a tampered dense file at load", async () => {
    flipByte(path.join(m.root, "dense/l1-router.onnx"));
    const e = await refusal(m);
    expect(e.modelReason).toBe("FILE_TAMPERED");
    expect(e.message).toContain("dense/l1-router.onnx");
  });

  it("refuses a missing file, naming it", async () => {
    fs.rmSync(path.join(m.root, "experts/t2/l1/g1-e3.onnx"));
    const e = await refusal(m);
    expect(e.modelReason).toBe("FILE_MISSING");
    expect(e.message).toContain("experts/t2/l1/g1-e3.onnx");
  });

  it("refuses a manifest whose signature does not verify", async () => {
    const file = path.join(m.root, "manifest.json");
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace('"name": "hot"', '"name": "h0t"'));
    const e = await refusal(m);
    expect(e.modelReason).toBe("SIGNATURE_INVALID");
    expect(e.message).toContain("manifest.sig");
  });

  it("refuses an unknown manifest major version, naming the field", async () => {
    resign(m, (x) => (x.manifestVersion = "2.0"));
    const e = await refusal(m);
    expect(e.modelReason).toBe("MANIFEST_VERSION_UNSUPPORTED");
    expect(e.field).toBe("manifestVersion");
    expect(e.message).toContain("manifestVersion");
  });

  it("refuses a tier over its parameter budget, naming the field and tier", async () => {
    resign(m, (x) => ((x.tiers as { paramBudget: number }[])[1].paramBudget = 1000));
    const e = await refusal(m);
    expect(e.modelReason).toBe("TIER_OVER_BUDGET");
    expect(e.field).toBe("tiers.1.paramBudget");
    expect(e.message).toContain("tiny.t1");
  });

  it("refuses a malformed field, naming it", async () => {
    resign(m, (x) => ((x.architecture as { heads: unknown }).heads = "two"));
    const e = await refusal(m);
    expect(e.modelReason).toBe("MANIFEST_INVALID");
    expect(e.field).toBe("architecture.heads");
  });

  it("ignores unknown fields and unknown kinds of tier from a newer minor version", async () => {
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

  it("trusts an explicit public key (PEM or base64 DER) over the one beside the manifest", async () => {
    const pem = fs.readFileSync(path.join(m.root, "public-key.pem"), "utf8");
    const der = createPublicKey(pem).export({ type: "spki", format: "der" }).toString("base64");
    for (const publicKey of [pem, der]) await (await openTiny(m, { publicKey })).close();
    const other = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }).toString();
    expect((await refusal(m, { publicKey: other })).modelReason).toBe("SIGNATURE_INVALID");
    expect((await refusal(m, { publicKey: "not a key" })).modelReason).toBe("PUBLIC_KEY_INVALID");
  });
});
