import { createPublicKey, generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ManifestError } from "./manifest.errors";
import { readManifest, type ReadManifestOptions } from "./manifest-reader";
import { flipByte, writeSignedModel, type SignedModel } from "./testing/signed-model.fixture";
import { readVerifiedFile, sha256Hex } from "./verified-file";

function refusal(m: SignedModel, opts: ReadManifestOptions = {}): ManifestError {
  try {
    readManifest(m.root, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(ManifestError);
    return e as ManifestError;
  }
  throw new Error("manifest was accepted");
}

describe("readManifest", () => {
  let m: SignedModel;
  beforeEach(() => {
    m = writeSignedModel();
  });
  afterEach(() => m.cleanup());

  const expertFile = "experts/t0/l0/e1.onnx";

  it("reads an untouched model: its tiers, files and the manifest's SHA-256", () => {
    const loaded = readManifest(m.root, { verifyAllHashes: true });
    expect(loaded.manifest.tiers.map((t) => t.id)).toEqual(["fake.t0", "fake.t1", "fake.t2"]);
    expect(loaded.manifestSha256).toBe(sha256Hex(fs.readFileSync(path.join(m.root, "manifest.json"))));
    expect(loaded.files.get(expertFile)?.bytes).toBeGreaterThan(0);
    expect(loaded.ignoredTiers).toEqual([]);
  });

  it("hashes experts only with verifyAllHashes; otherwise readVerifiedFile refuses them on first read", () => {
    flipByte(path.join(m.root, expertFile));
    const e = refusal(m, { verifyAllHashes: true });
    expect(e.manifestReason).toBe("FILE_TAMPERED");
    expect(e.file).toBe(expertFile);
    expect(e.message).toContain(expertFile);
    const lazy = readManifest(m.root);
    expect(() => readVerifiedFile(m.root, lazy.files.get(expertFile)!)).toThrow(/does not match its manifest hash/);
  });

  it("refuses a tampered dense file at load", () => {
    flipByte(path.join(m.root, "dense/l1-router.onnx"));
    const e = refusal(m);
    expect(e.manifestReason).toBe("FILE_TAMPERED");
    expect(e.message).toContain("dense/l1-router.onnx");
  });

  it("refuses a missing file or a file of another size, naming it", () => {
    fs.rmSync(path.join(m.root, "experts/t2/l1/e1.onnx"));
    const missing = refusal(m);
    expect(missing.manifestReason).toBe("FILE_MISSING");
    expect(missing.message).toContain("experts/t2/l1/e1.onnx");
    fs.writeFileSync(path.join(m.root, "experts/t2/l1/e1.onnx"), "short");
    expect(refusal(m).message).toMatch(/experts\/t2\/l1\/e1\.onnx has 5 bytes/);
  });

  it("refuses a manifest whose signature does not verify", () => {
    const file = path.join(m.root, "manifest.json");
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace('"name": "hot"', '"name": "h0t"'));
    const e = refusal(m);
    expect(e.manifestReason).toBe("SIGNATURE_INVALID");
    expect(e.message).toContain("manifest.sig");
  });

  it("refuses an unknown manifest major version, naming the field", () => {
    m.resign((x) => (x.manifestVersion = "2.0"));
    const e = refusal(m);
    expect(e.manifestReason).toBe("MANIFEST_VERSION_UNSUPPORTED");
    expect(e.field).toBe("manifestVersion");
  });

  it("refuses a tier over its parameter budget, naming the field and tier", () => {
    m.resign((x) => ((x.tiers as { paramBudget: number }[])[1].paramBudget = 10));
    const e = refusal(m);
    expect(e.manifestReason).toBe("TIER_OVER_BUDGET");
    expect(e.field).toBe("tiers.1.paramBudget");
    expect(e.message).toContain("fake.t1");
  });

  it("refuses a malformed field, an unlisted file and a head width the decode loop cannot split", () => {
    m.resign((x) => ((x.architecture as { heads: unknown }).heads = "two"));
    expect(refusal(m)).toMatchObject({ manifestReason: "MANIFEST_INVALID", field: "architecture.heads" });
    m.resign((x) => ((x.architecture as { heads: unknown }).heads = 4)); // 8 / 4 = 2, not a multiple of 4
    expect(refusal(m)).toMatchObject({ manifestReason: "MANIFEST_INVALID", field: "architecture.heads" });
    m.resign((x) => {
      (x.architecture as { heads: unknown }).heads = 2;
      x.files = (x.files as { path: string }[]).filter((f) => f.path !== "dense/lm-head.onnx");
    });
    expect(refusal(m)).toMatchObject({ manifestReason: "MANIFEST_INVALID", field: "dense.lmHead" });
  });

  it("ignores unknown fields and unknown kinds of tier from a newer minor version", () => {
    m.resign((x) => {
      x.manifestVersion = "1.7";
      x.futureField = { anything: true };
      (x.tiers as Record<string, unknown>[])[0].futureTierField = 3;
      (x.tiers as Record<string, unknown>[]).push({ id: "fake.t9", placement: "REMOTE_GPU", whatever: [1, 2] });
    });
    const loaded = readManifest(m.root);
    expect(loaded.manifest.tiers.map((t) => t.id)).toEqual(["fake.t0", "fake.t1", "fake.t2"]);
    expect(loaded.ignoredTiers).toEqual(["fake.t9"]);
    expect(loaded.manifest).not.toHaveProperty("futureField");
  });

  it("trusts an explicit public key (PEM or base64 DER) over the one beside the manifest", () => {
    const pem = fs.readFileSync(path.join(m.root, "public-key.pem"), "utf8");
    const der = createPublicKey(pem).export({ type: "spki", format: "der" }).toString("base64");
    for (const publicKey of [pem, der]) expect(readManifest(m.root, { publicKey }).manifest.name).toBe("fake");
    const other = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }).toString();
    expect(refusal(m, { publicKey: other }).manifestReason).toBe("SIGNATURE_INVALID");
    expect(refusal(m, { publicKey: "not a key" }).manifestReason).toBe("PUBLIC_KEY_INVALID");
  });
});
