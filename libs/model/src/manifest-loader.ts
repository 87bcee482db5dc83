import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import {
  MANIFEST_MAJOR_VERSION,
  ManifestSchema,
  PLACEMENTS,
  TierSchema,
  tierParams,
  type FileEntry,
  type Manifest,
  type TierManifest,
} from "./manifest.schema";
import { PUBLIC_KEY_FILE, SIGNATURE_FILE, parsePublicKey, verifyManifestSignature } from "./manifest-signing";
import { ModelError } from "./model.errors";

/**
 * Reads and verifies `<root>/manifest.json`, in this order (cheap refusals first):
 *   1. the signature over the exact manifest bytes, with the trusted public key
 *      (options.publicKey, else `public-key.pem` beside the manifest);
 *   2. the version (same major only), then the schema; a tier whose placement this
 *      reader does not know is skipped (a newer manifest may add kinds of tier);
 *   3. consistency: every referenced file is listed, tiers fit their parameter budgets;
 *   4. every listed file exists with its listed size; dense files (and with
 *      `verifyAllHashes` every file) are hashed now, experts when first loaded.
 */

export interface LoadedManifest {
  root: string;
  manifest: Manifest;
  manifestSha256: string;
  /** ids (or indexes) of tiers skipped as unknown to this reader */
  ignoredTiers: string[];
  files: Map<string, FileEntry>;
}

export interface ReadManifestOptions {
  publicKey?: string;
  verifyAllHashes?: boolean;
}

function zodMessage(error: z.ZodError, prefix: string): { message: string; field: string } {
  const issue = error.issues[0];
  const field = [prefix, ...issue.path.map(String)].filter(Boolean).join(".");
  return { field, message: `manifest field ${field}: ${issue.message}` };
}

export function sha256Hex(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Reads one listed file and checks its size and hash; the only way model bytes are read. */
export function readVerifiedFile(root: string, entry: FileEntry): Buffer {
  const abs = path.join(root, entry.path);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(abs);
  } catch {
    throw new ModelError("FILE_MISSING", `model file ${entry.path} is missing`, { file: entry.path });
  }
  if (bytes.length !== entry.bytes || sha256Hex(bytes) !== entry.sha256) {
    throw new ModelError(
      "FILE_TAMPERED",
      `model file ${entry.path} does not match its manifest hash (tampered or corrupt)`,
      {
        file: entry.path,
      },
    );
  }
  return bytes;
}

export function readManifest(root: string, opts: ReadManifestOptions = {}): LoadedManifest {
  const need = (file: string): Buffer => {
    try {
      return fs.readFileSync(path.join(root, file));
    } catch {
      throw new ModelError("FILE_MISSING", `model file ${file} is missing in ${root}`, { file });
    }
  };
  const manifestBytes = need("manifest.json");
  const signature = need(SIGNATURE_FILE).toString("utf8");
  const publicKey = parsePublicKey(opts.publicKey ?? need(PUBLIC_KEY_FILE).toString("utf8"));
  if (!verifyManifestSignature(publicKey, manifestBytes, signature)) {
    throw new ModelError(
      "SIGNATURE_INVALID",
      `${SIGNATURE_FILE} is not a valid signature of manifest.json by the trusted key`,
      {
        file: SIGNATURE_FILE,
      },
    );
  }

  let raw: unknown;
  try {
    raw = JSON.parse(manifestBytes.toString("utf8"));
  } catch (e) {
    throw new ModelError("MANIFEST_INVALID", `manifest.json is not JSON: ${(e as Error).message}`, {
      file: "manifest.json",
    });
  }
  const version = (raw as { manifestVersion?: unknown })?.manifestVersion;
  const major = typeof version === "string" ? Number(version.split(".")[0]) : NaN;
  if (major !== MANIFEST_MAJOR_VERSION) {
    throw new ModelError(
      "MANIFEST_VERSION_UNSUPPORTED",
      `manifest field manifestVersion: ${JSON.stringify(version)} is not supported (this reader knows ${MANIFEST_MAJOR_VERSION}.x)`,
      { field: "manifestVersion", file: "manifest.json" },
    );
  }
  const envelope = ManifestSchema.safeParse(raw);
  if (!envelope.success) {
    const { message, field } = zodMessage(envelope.error, "");
    throw new ModelError("MANIFEST_INVALID", message, { field, file: "manifest.json" });
  }
  const m = envelope.data;

  const tiers: TierManifest[] = [];
  const ignoredTiers: string[] = [];
  m.tiers.forEach((t, i) => {
    const placement = (t as { placement?: unknown })?.placement;
    if (!PLACEMENTS.includes(placement as (typeof PLACEMENTS)[number])) {
      ignoredTiers.push(String((t as { id?: unknown })?.id ?? `tiers.${i}`));
      return;
    }
    const parsed = TierSchema.safeParse(t);
    if (!parsed.success) {
      const { message, field } = zodMessage(parsed.error, `tiers.${i}`);
      throw new ModelError("MANIFEST_INVALID", message, { field, file: "manifest.json" });
    }
    tiers.push(parsed.data);
  });
  if (tiers.length === 0)
    throw new ModelError("MANIFEST_INVALID", "manifest field tiers: no usable tier", { field: "tiers" });
  const manifest: Manifest = { ...m, tiers };
  checkConsistency(manifest);

  const files = new Map(manifest.files.map((f) => [f.path, f]));
  for (const f of manifest.files) {
    let size: number;
    try {
      size = fs.statSync(path.join(root, f.path)).size;
    } catch {
      throw new ModelError("FILE_MISSING", `model file ${f.path} is missing`, { file: f.path });
    }
    if (size !== f.bytes) {
      throw new ModelError("FILE_TAMPERED", `model file ${f.path} has ${size} bytes, manifest says ${f.bytes}`, {
        file: f.path,
      });
    }
  }
  const dense = [
    manifest.dense.embedding,
    manifest.dense.lmHead,
    ...manifest.dense.layers.flatMap((l) => [l.qkv, l.attnOut, l.router]),
  ];
  const toHash = opts.verifyAllHashes ? manifest.files : dense.map((p) => files.get(p) as FileEntry);
  for (const f of toHash) readVerifiedFile(root, f);

  return { root, manifest, manifestSha256: sha256Hex(manifestBytes), ignoredTiers, files };
}

function checkConsistency(m: Manifest): void {
  const listed = new Set(m.files.map((f) => f.path));
  const requireListed = (p: string, field: string) => {
    if (!listed.has(p))
      throw new ModelError("MANIFEST_INVALID", `manifest field ${field}: ${p} is not in files`, { field, file: p });
  };
  const a = m.architecture;
  if (a.dModel % a.heads !== 0 || (a.dModel / a.heads) % 4 !== 0) {
    throw new ModelError(
      "MANIFEST_INVALID",
      "manifest field architecture.heads: dModel / heads must be a whole multiple of 4",
      {
        field: "architecture.heads",
      },
    );
  }
  if (m.dense.layers.length !== a.layers) {
    throw new ModelError("MANIFEST_INVALID", "manifest field dense.layers: one entry per layer expected", {
      field: "dense.layers",
    });
  }
  requireListed(m.dense.embedding, "dense.embedding");
  requireListed(m.dense.lmHead, "dense.lmHead");
  m.dense.layers.forEach((l, i) => {
    requireListed(l.qkv, `dense.layers.${i}.qkv`);
    requireListed(l.attnOut, `dense.layers.${i}.attnOut`);
    requireListed(l.router, `dense.layers.${i}.router`);
  });
  const ids = new Set<string>();
  m.tiers.forEach((t, i) => {
    const field = `tiers.${i}`;
    if (ids.has(t.id))
      throw new ModelError("MANIFEST_INVALID", `manifest field ${field}.id: duplicate ${t.id}`, {
        field: `${field}.id`,
      });
    ids.add(t.id);
    const params = tierParams(a, t);
    if (params > t.paramBudget) {
      throw new ModelError(
        "TIER_OVER_BUDGET",
        `manifest field ${field}.paramBudget: tier ${t.id} holds ${params} expert parameters, over its budget of ${t.paramBudget}`,
        { field: `${field}.paramBudget` },
      );
    }
    if (t.experts.length !== a.layers || t.experts.some((row) => row.length !== t.groups * t.expertsPerGroup)) {
      throw new ModelError(
        "MANIFEST_INVALID",
        `manifest field ${field}.experts: expected [layers][groups × expertsPerGroup] paths`,
        {
          field: `${field}.experts`,
        },
      );
    }
    t.experts.forEach((row, l) => row.forEach((p, j) => requireListed(p, `${field}.experts.${l}.${j}`)));
  });
}
