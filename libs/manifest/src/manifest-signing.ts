import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ManifestError } from "./manifest.errors";

/** Ed25519 signing of manifest bytes (pure EdDSA: the signature is deterministic per key). */

export const SIGNING_KEY_FILE = "signing-key.pem";
export const PUBLIC_KEY_FILE = "public-key.pem";
export const SIGNATURE_FILE = "manifest.sig";

/** Loads `<modelDir>/signing-key.pem`, creating it (mode 0600) on first use. */
export function loadOrCreateSigningKey(modelDir: string): KeyObject {
  const file = path.join(modelDir, SIGNING_KEY_FILE);
  if (fs.existsSync(file)) return createPrivateKey(fs.readFileSync(file));
  fs.mkdirSync(modelDir, { recursive: true });
  const { privateKey } = generateKeyPairSync("ed25519");
  const pem = privateKey.export({ type: "pkcs8", format: "pem" });
  // "wx": never overwrite a key another builder wrote a moment ago.
  try {
    fs.writeFileSync(file, pem, { mode: 0o600, flag: "wx" });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    return createPrivateKey(fs.readFileSync(file));
  }
  return privateKey;
}

export function publicKeyPem(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ type: "spki", format: "pem" }).toString();
}

export function signManifest(privateKey: KeyObject, manifestBytes: Buffer): string {
  return sign(null, manifestBytes, privateKey).toString("base64");
}

/** Accepts a PEM (SPKI) or the base64 of its DER, as MODEL_PUBLIC_KEY may carry either. */
export function parsePublicKey(text: string): KeyObject {
  try {
    const trimmed = text.trim();
    const key = trimmed.startsWith("-----BEGIN")
      ? createPublicKey(trimmed)
      : createPublicKey({ key: Buffer.from(trimmed, "base64"), format: "der", type: "spki" });
    if (key.asymmetricKeyType !== "ed25519") throw new Error(`key type ${key.asymmetricKeyType}`);
    return key;
  } catch (e) {
    throw new ManifestError(
      "PUBLIC_KEY_INVALID",
      `public key is not an Ed25519 SPKI key (PEM or base64 DER): ${(e as Error).message}`,
      {
        field: "publicKey",
      },
    );
  }
}

export function verifyManifestSignature(publicKey: KeyObject, manifestBytes: Buffer, signatureText: string): boolean {
  const signature = Buffer.from(signatureText.trim(), "base64");
  if (signature.length !== 64) return false;
  return verify(null, manifestBytes, publicKey, signature);
}
