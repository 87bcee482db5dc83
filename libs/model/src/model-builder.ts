import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  MANIFEST_VERSION,
  PUBLIC_KEY_FILE,
  SIGNATURE_FILE,
  loadOrCreateSigningKey,
  publicKeyPem,
  routerWidth,
  signManifest,
  tierParams,
  type FileEntry,
  type TierManifest,
} from "@lite/manifest";
import {
  CHAR_FREQUENCIES,
  EOS_FREQUENCY,
  OTHER_PRINTABLE_FREQUENCY,
  PRESETS,
  UPPERCASE_FREQUENCY,
  type ModelPreset,
  type PresetName,
} from "./model-presets";
import { buildEmbeddingModel, buildExpertModel, buildLinearModel } from "./onnx-builder";
import { Sfc32, fnv1a32 } from "./seeded-random";

/**
 * Builds a synthetic model deterministically: every file's weights come from a generator
 * seeded by (preset seed, file path), so the same preset always yields byte-identical ONNX
 * files and manifest. Steps:
 *   1. write every dense and expert file into `<modelDir>/<name>.building-<pid>/`,
 *      hashing each buffer as it is written;
 *   2. write manifest.json (fixed key order, no timestamps), sign it with the Ed25519 key
 *      at `<modelDir>/signing-key.pem` (created 0600 if missing), write the public key;
 *   3. swap the directory into place, so readers never see a half-built model.
 * Scales: inputs to every matrix are RMS-normalised, so weights ~ U(±√3/√fan_in) give unit
 * variance outputs; residual branches are damped so activations stay in range across layers.
 */

export interface BuildModelOptions {
  modelDir: string;
  modelName: string;
  preset: PresetName | ModelPreset;
}

export interface BuildModelResult {
  root: string;
  manifestSha256: string;
  files: number;
  bytes: number;
  durationMs: number;
}

const uniformScale = (fanIn: number, gain: number) => (gain * Math.sqrt(3)) / Math.sqrt(fanIn);

function logitBias(vocab: number, eos: number): Float32Array {
  const bias = new Float32Array(vocab).fill(-30); // bytes we never sample still get a finite logit
  for (let c = 32; c <= 126; c++) {
    const ch = String.fromCharCode(c);
    const f = CHAR_FREQUENCIES[ch] ?? (ch >= "A" && ch <= "Z" ? UPPERCASE_FREQUENCY : OTHER_PRINTABLE_FREQUENCY);
    bias[c] = Math.log(f);
  }
  bias[10] = Math.log(CHAR_FREQUENCIES["\n"]);
  bias[eos] = Math.log(EOS_FREQUENCY);
  return bias;
}

export function buildModel(opts: BuildModelOptions): BuildModelResult {
  const started = Date.now();
  const preset = typeof opts.preset === "string" ? PRESETS[opts.preset] : opts.preset;
  const arch = preset.architecture;
  const d = arch.dModel;
  const finalRoot = path.join(opts.modelDir, opts.modelName);
  const root = `${finalRoot}.building-${process.pid}`;
  fs.rmSync(root, { recursive: true, force: true });
  const files: FileEntry[] = [];
  let totalBytes = 0;

  const rng = (rel: string) => new Sfc32(fnv1a32(`${preset.seed}|${rel}`));
  const write = (rel: string, bytes: Buffer) => {
    const abs = path.join(root, rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, bytes);
    files.push({ path: rel, sha256: createHash("sha256").update(bytes).digest("hex"), bytes: bytes.length });
    totalBytes += bytes.length;
  };
  const linear = (rel: string, inDim: number, outDim: number, gain: number, bias?: Float32Array) => {
    const w = rng(rel).fillUniform(new Float32Array(inDim * outDim), uniformScale(inDim, gain));
    write(rel, buildLinearModel(path.basename(rel, ".onnx"), w, inDim, outDim, bias));
    return rel;
  };

  // Dense blocks.
  const embedding = "dense/embedding.onnx";
  {
    const r = rng(embedding);
    const tok = r.fillUniform(new Float32Array(arch.vocabSize * d), Math.sqrt(3));
    const pos = r.fillUniform(new Float32Array(arch.maxContextTokens * d), 0.5 * Math.sqrt(3));
    write(embedding, buildEmbeddingModel("embedding", tok, arch.vocabSize, pos, arch.maxContextTokens, d));
  }
  const rWidth = routerWidth(preset.tiers);
  const residualGain = 1 / Math.sqrt(2 * arch.layers);
  const layers = [];
  for (let l = 0; l < arch.layers; l++) {
    layers.push({
      qkv: linear(`dense/l${l}-qkv.onnx`, d, 3 * d, 1),
      attnOut: linear(`dense/l${l}-attn-out.onnx`, d, d, residualGain),
      // Router gain 2: scores with a spread of a few units, so top-k is decisive but varied.
      router: linear(`dense/l${l}-router.onnx`, d, rWidth, 2),
    });
  }
  const lmHead = linear("dense/lm-head.onnx", d, arch.vocabSize, 2, logitBias(arch.vocabSize, arch.eosToken));

  // Experts, tier by tier; router columns laid out [tier score | group scores | expert scores] per tier.
  const tiers: TierManifest[] = [];
  let col = 0;
  preset.tiers.forEach((t, rank) => {
    const id = `${opts.modelName}.${t.key}`;
    const experts: string[][] = [];
    for (let l = 0; l < arch.layers; l++) {
      const row: string[] = [];
      for (let g = 0; g < t.groups; g++) {
        for (let e = 0; e < t.expertsPerGroup; e++) {
          const rel = `experts/${t.key}/l${l}/g${g}-e${e}.onnx`;
          const r = rng(rel);
          const w1 = r.fillUniform(new Float32Array(d * t.expertWidth), uniformScale(d, 1));
          const b1 = r.fillUniform(new Float32Array(t.expertWidth), 0.05);
          const w2 = r.fillUniform(new Float32Array(t.expertWidth * d), uniformScale(t.expertWidth, residualGain));
          const b2 = r.fillUniform(new Float32Array(d), 0.02);
          write(rel, buildExpertModel(`${id}/l${l}/g${g}/e${e}`, { dModel: d, width: t.expertWidth, w1, b1, w2, b2 }));
          row.push(rel);
        }
      }
      experts.push(row);
    }
    const params = tierParams(arch, t);
    tiers.push({
      id,
      name: t.name,
      rank,
      placement: t.placement,
      groups: t.groups,
      expertsPerGroup: t.expertsPerGroup,
      expertWidth: t.expertWidth,
      routing: { groupTopK: t.groupTopK, expertTopK: t.expertTopK },
      paramBudget: Math.ceil(params * preset.budgetHeadroom),
      restricted: t.restricted,
      routerColumns: { tier: col, groups: col + 1, experts: col + 1 + t.groups },
      experts,
    });
    col += 1 + t.groups + t.groups * t.expertsPerGroup;
  });

  const manifest = {
    manifestVersion: MANIFEST_VERSION,
    name: opts.modelName,
    architecture: arch,
    routing: preset.routing,
    dense: { embedding, layers, lmHead },
    tiers,
    files,
  };
  const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, "utf8");
  const key = loadOrCreateSigningKey(opts.modelDir);
  fs.writeFileSync(path.join(root, "manifest.json"), manifestBytes);
  fs.writeFileSync(path.join(root, SIGNATURE_FILE), `${signManifest(key, manifestBytes)}\n`);
  fs.writeFileSync(path.join(root, PUBLIC_KEY_FILE), publicKeyPem(key));

  fs.rmSync(finalRoot, { recursive: true, force: true });
  fs.renameSync(root, finalRoot);
  return {
    root: finalRoot,
    manifestSha256: createHash("sha256").update(manifestBytes).digest("hex"),
    files: files.length,
    bytes: totalBytes,
    durationMs: Date.now() - started,
  };
}
