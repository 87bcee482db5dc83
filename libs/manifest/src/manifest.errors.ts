import { DomainError } from "@lite/core";

/**
 * Why a model's manifest or files were refused. Integrity failures are not retryable: the
 * files on disk must change (or the model be rebuilt) before loading can succeed.
 */
export type ManifestErrorReason =
  | "MANIFEST_INVALID"
  | "MANIFEST_VERSION_UNSUPPORTED"
  | "SIGNATURE_INVALID"
  | "PUBLIC_KEY_INVALID"
  | "FILE_MISSING"
  | "FILE_TAMPERED"
  | "TIER_OVER_BUDGET";

/** A refused model (code INTERNAL: clients never see why; operators read the reason and file). */
export class ManifestError extends DomainError {
  readonly manifestReason: ManifestErrorReason;
  /** the manifest-relative file, when one is to blame */
  readonly file?: string;

  constructor(reason: ManifestErrorReason, message: string, where: { file?: string; field?: string } = {}) {
    super("INTERNAL", message, { reason, field: where.field, context: { file: where.file } });
    this.name = "ManifestError";
    this.manifestReason = reason;
    this.file = where.file;
  }
}
