import { createHash, webcrypto } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ManifestError } from "./manifest.errors";
import type { FileEntry } from "./manifest.schema";

export function sha256Hex(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Reads one listed file and checks its size and hash; the only way model bytes are read. */
export function readVerifiedFile(root: string, entry: FileEntry): Buffer {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path.join(root, entry.path));
  } catch {
    throw missing(entry);
  }
  if (bytes.length !== entry.bytes || sha256Hex(bytes) !== entry.sha256) throw tampered(entry);
  return bytes;
}

/**
 * `readVerifiedFile` without holding the event loop: the read and the SHA-256 run on libuv's
 * thread pool (WebCrypto's digest is asynchronous in Node), so a decode step goes on while an
 * expert is read and checked.
 */
export async function readVerifiedFileAsync(root: string, entry: FileEntry): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(path.join(root, entry.path));
  } catch {
    throw missing(entry);
  }
  if (bytes.length !== entry.bytes) throw tampered(entry);
  const digest = Buffer.from(await webcrypto.subtle.digest("SHA-256", bytes)).toString("hex");
  if (digest !== entry.sha256) throw tampered(entry);
  return bytes;
}

function missing(entry: FileEntry): ManifestError {
  return new ManifestError("FILE_MISSING", `model file ${entry.path} is missing`, { file: entry.path });
}

function tampered(entry: FileEntry): ManifestError {
  return new ManifestError(
    "FILE_TAMPERED",
    `model file ${entry.path} does not match its manifest hash (tampered or corrupt)`,
    { file: entry.path },
  );
}

/** Every listed file exists with its listed size (cheap: a stat each, no hashing). */
export function checkListedSizes(root: string, files: readonly FileEntry[]): void {
  for (const f of files) {
    let size: number;
    try {
      size = fs.statSync(path.join(root, f.path)).size;
    } catch {
      throw new ManifestError("FILE_MISSING", `model file ${f.path} is missing`, { file: f.path });
    }
    if (size !== f.bytes) {
      throw new ManifestError("FILE_TAMPERED", `model file ${f.path} has ${size} bytes, manifest says ${f.bytes}`, {
        file: f.path,
      });
    }
  }
}
