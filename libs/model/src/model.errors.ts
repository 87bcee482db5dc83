import { DomainError } from "@lite/core";

/**
 * Why a model was refused. Integrity failures are not retryable: the files on disk must
 * change (or the model be rebuilt) before loading can succeed.
 */
export type ModelErrorReason =
  | "MANIFEST_INVALID"
  | "MANIFEST_VERSION_UNSUPPORTED"
  | "SIGNATURE_INVALID"
  | "PUBLIC_KEY_INVALID"
  | "FILE_MISSING"
  | "FILE_TAMPERED"
  | "TIER_OVER_BUDGET";

export class ModelError extends DomainError {
  readonly modelReason: ModelErrorReason;
  /** the manifest-relative file, when one is to blame */
  readonly file?: string;

  constructor(reason: ModelErrorReason, message: string, where: { file?: string; field?: string } = {}) {
    super("INTERNAL", message, { reason, field: where.field, context: { file: where.file } });
    this.name = "ModelError";
    this.modelReason = reason;
    this.file = where.file;
  }
}
