import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { MANIFEST_VERSION } from "../manifest.schema";
import { PUBLIC_KEY_FILE, SIGNATURE_FILE, publicKeyPem, signManifest } from "../manifest-signing";
import { tierParams } from "../tier-description";
import { sha256Hex } from "../verified-file";

/**
 * Test helper: a small signed model directory whose files are arbitrary bytes (the manifest
 * library never parses ONNX), so manifest tests run without building a real model.
 * Tiers: t0 HOT 1×2 w4 (top 1·1), t1 WARM 2×2 w8 (top 1·2), t2 COLD restricted 1×2 w8.
 */
export interface SignedModel {
  modelDir: string;
  modelName: string;
  root: string;
  /** rewrites manifest.json through `edit` and signs it again with the same key */
  resign(edit: (manifest: Record<string, unknown>) => void): void;
  cleanup(): void;
}

const ARCH = {
  vocabSize: 8,
  dModel: 8,
  layers: 2,
  heads: 2,
  maxContextTokens: 32,
  bosToken: 6,
  eosToken: 7,
  normEpsilon: 1e-5,
};

const TIERS = [
  {
    key: "t0",
    name: "hot",
    placement: "HOT",
    groups: 1,
    expertsPerGroup: 2,
    expertWidth: 4,
    top: [1, 1],
    restricted: false,
  },
  {
    key: "t1",
    name: "warm",
    placement: "WARM",
    groups: 2,
    expertsPerGroup: 2,
    expertWidth: 8,
    top: [1, 2],
    restricted: false,
  },
  {
    key: "t2",
    name: "cold",
    placement: "COLD",
    groups: 1,
    expertsPerGroup: 2,
    expertWidth: 8,
    top: [1, 1],
    restricted: true,
  },
] as const;

export function writeSignedModel(modelName = "fake"): SignedModel {
  const modelDir = fs.mkdtempSync(path.join(os.tmpdir(), "lite-manifest-"));
  const root = path.join(modelDir, modelName);
  const files: { path: string; sha256: string; bytes: number }[] = [];
  const write = (rel: string) => {
    const bytes = Buffer.from(`bytes of ${rel}\n`.repeat(3));
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), bytes);
    files.push({ path: rel, sha256: sha256Hex(bytes), bytes: bytes.length });
    return rel;
  };
  const layers = [0, 1].map((l) => ({
    qkv: write(`dense/l${l}-qkv.onnx`),
    attnOut: write(`dense/l${l}-attn-out.onnx`),
    router: write(`dense/l${l}-router.onnx`),
  }));
  let col = 0;
  const tiers = TIERS.map((t, rank) => {
    const experts = [0, 1].map((l) =>
      Array.from({ length: t.groups * t.expertsPerGroup }, (_, j) => write(`experts/${t.key}/l${l}/e${j}.onnx`)),
    );
    const tier = {
      id: `${modelName}.${t.key}`,
      name: t.name,
      rank,
      placement: t.placement,
      groups: t.groups,
      expertsPerGroup: t.expertsPerGroup,
      expertWidth: t.expertWidth,
      routing: { groupTopK: t.top[0], expertTopK: t.top[1] },
      paramBudget: tierParams(ARCH, t),
      restricted: t.restricted,
      routerColumns: { tier: col, groups: col + 1, experts: col + 1 + t.groups },
      experts,
    };
    col += 1 + t.groups + t.groups * t.expertsPerGroup;
    return tier;
  });
  const manifest = {
    manifestVersion: MANIFEST_VERSION,
    name: modelName,
    architecture: ARCH,
    routing: { tierTopK: 2, scoreFractionBits: 16 },
    dense: { embedding: write("dense/embedding.onnx"), layers, lmHead: write("dense/lm-head.onnx") },
    tiers,
    files,
  };
  const { privateKey } = generateKeyPairSync("ed25519");
  const sign = (m: unknown) => {
    const bytes = Buffer.from(JSON.stringify(m, null, 2));
    fs.writeFileSync(path.join(root, "manifest.json"), bytes);
    fs.writeFileSync(path.join(root, SIGNATURE_FILE), signManifest(privateKey, bytes));
  };
  sign(manifest);
  fs.writeFileSync(path.join(root, PUBLIC_KEY_FILE), publicKeyPem(privateKey));
  return {
    modelDir,
    modelName,
    root,
    resign(edit) {
      const m = JSON.parse(fs.readFileSync(path.join(root, "manifest.json"), "utf8"));
      edit(m);
      sign(m);
    },
    cleanup: () => fs.rmSync(modelDir, { recursive: true, force: true }),
  };
}

/** Flips one byte in the middle of a file, keeping its size. */
export function flipByte(file: string): void {
  const bytes = fs.readFileSync(file);
  bytes[bytes.length >> 1] ^= 0x01;
  fs.writeFileSync(file, bytes);
}
