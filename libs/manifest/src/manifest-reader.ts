import * as fs from "node:fs";
import * as path from "node:path";
import { PLACEMENTS, type Placement } from "@lite/core";
import { z } from "zod";
import { checkConsistency, denseFiles } from "./manifest-consistency";
import { ManifestError } from "./manifest.errors";
import {
  MANIFEST_MAJOR_VERSION,
  ManifestSchema,
  TierSchema,
  type FileEntry,
  type Manifest,
  type TierManifest,
} from "./manifest.schema";
import { PUBLIC_KEY_FILE, SIGNATURE_FILE, parsePublicKey, verifyManifestSignature } from "./manifest-signing";
import { checkListedSizes, readVerifiedFile, sha256Hex } from "./verified-file";

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
  /** trusted Ed25519 key, PEM or base64 DER; default: `public-key.pem` beside the manifest */
  publicKey?: string;
  /** hash every listed file now instead of only the dense ones; default false */
  verifyAllHashes?: boolean;
}

export function readManifest(root: string, opts: ReadManifestOptions = {}): LoadedManifest {
  const manifestBytes = readSignedManifest(root, opts.publicKey);
  const { manifest, ignoredTiers } = parseManifest(manifestBytes);
  checkConsistency(manifest);
  const files = new Map(manifest.files.map((f) => [f.path, f]));
  checkListedSizes(root, manifest.files);
  const toHash = opts.verifyAllHashes ? manifest.files : denseFiles(manifest).map((p) => files.get(p) as FileEntry);
  for (const f of toHash) readVerifiedFile(root, f);
  return { root, manifest, manifestSha256: sha256Hex(manifestBytes), ignoredTiers, files };
}

/** Step 1: manifest.json's bytes, once its signature verifies with the trusted key. */
function readSignedManifest(root: string, publicKeyText: string | undefined): Buffer {
  const need = (file: string): Buffer => {
    try {
      return fs.readFileSync(path.join(root, file));
    } catch {
      throw new ManifestError("FILE_MISSING", `model file ${file} is missing in ${root}`, { file });
    }
  };
  const manifestBytes = need("manifest.json");
  const signature = need(SIGNATURE_FILE).toString("utf8");
  const publicKey = parsePublicKey(publicKeyText ?? need(PUBLIC_KEY_FILE).toString("utf8"));
  if (!verifyManifestSignature(publicKey, manifestBytes, signature)) {
    throw new ManifestError(
      "SIGNATURE_INVALID",
      `${SIGNATURE_FILE} is not a valid signature of manifest.json by the trusted key`,
      { file: SIGNATURE_FILE },
    );
  }
  return manifestBytes;
}

function zodMessage(error: z.ZodError, prefix: string): { message: string; field: string } {
  const issue = error.issues[0];
  const field = [prefix, ...issue.path.map(String)].filter(Boolean).join(".");
  return { field, message: `manifest field ${field}: ${issue.message}` };
}

/** Step 2: JSON, then the major version, then the schema, tier by tier. */
function parseManifest(manifestBytes: Buffer): { manifest: Manifest; ignoredTiers: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(manifestBytes.toString("utf8"));
  } catch (e) {
    throw new ManifestError("MANIFEST_INVALID", `manifest.json is not JSON: ${(e as Error).message}`, {
      file: "manifest.json",
    });
  }
  const version = (raw as { manifestVersion?: unknown })?.manifestVersion;
  const major = typeof version === "string" ? Number(version.split(".")[0]) : NaN;
  if (major !== MANIFEST_MAJOR_VERSION) {
    throw new ManifestError(
      "MANIFEST_VERSION_UNSUPPORTED",
      `manifest field manifestVersion: ${JSON.stringify(version)} is not supported (this reader knows ${MANIFEST_MAJOR_VERSION}.x)`,
      { field: "manifestVersion", file: "manifest.json" },
    );
  }
  const envelope = ManifestSchema.safeParse(raw);
  if (!envelope.success) {
    const { message, field } = zodMessage(envelope.error, "");
    throw new ManifestError("MANIFEST_INVALID", message, { field, file: "manifest.json" });
  }
  const { tiers, ignoredTiers } = parseTiers(envelope.data.tiers);
  return { manifest: { ...envelope.data, tiers }, ignoredTiers };
}

/** Tiers of a known placement are parsed strictly; others are skipped and named. */
function parseTiers(raw: readonly unknown[]): { tiers: TierManifest[]; ignoredTiers: string[] } {
  const tiers: TierManifest[] = [];
  const ignoredTiers: string[] = [];
  raw.forEach((t, i) => {
    const placement = (t as { placement?: unknown })?.placement;
    if (!PLACEMENTS.includes(placement as Placement)) {
      ignoredTiers.push(String((t as { id?: unknown })?.id ?? `tiers.${i}`));
      return;
    }
    const parsed = TierSchema.safeParse(t);
    if (!parsed.success) {
      const { message, field } = zodMessage(parsed.error, `tiers.${i}`);
      throw new ManifestError("MANIFEST_INVALID", message, { field, file: "manifest.json" });
    }
    tiers.push(parsed.data);
  });
  if (tiers.length === 0)
    throw new ManifestError("MANIFEST_INVALID", "manifest field tiers: no usable tier", { field: "tiers" });
  return { tiers, ignoredTiers };
}
